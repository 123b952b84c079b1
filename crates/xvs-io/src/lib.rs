//! I/O for xvs, and all of its unsafe code: AF_XDP sockets and UMEM (over xsk-rs), the XDP
//! programs (over libbpf: xvsd's steering, the benchmark sink), and the kernel's network state
//! (rtnetlink).
//!
//! This crate moves frames; it knows nothing about services or connections. What only the
//! benchmark harness needs (the sink program, transmit-only sockets, `WorkerIo::send`) is
//! behind the `bench` feature. Every `unsafe`
//! block carries a `// SAFETY:` note saying why it is sound.
#![allow(unsafe_code)]

pub mod clock;
pub mod ethtool;
pub mod gate;
pub mod genl;
mod map;
pub mod napi;
pub mod netlink;
pub mod sched;
#[cfg(feature = "bench")]
pub mod sink;
pub mod steering;
pub mod sync_sock;
pub mod vip_dev;
pub mod vrrp_sock;
pub mod xdp_loader;
pub mod xsk;
