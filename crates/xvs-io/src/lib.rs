//! I/O for xvs, and all of its unsafe code: AF_XDP sockets and UMEM (over xsk-rs), the XDP
//! programs (over libbpf: xvsd's steering, the benchmark sink), and the kernel's network state
//! (rtnetlink).
//!
//! This crate moves frames; it knows nothing about services or connections. Every `unsafe`
//! block carries a `// SAFETY:` note saying why it is sound.
#![allow(unsafe_code)]

pub mod bpf;
pub mod clock;
pub mod ethtool;
pub mod gate;
pub mod genl;
pub mod napi;
pub mod netlink;
pub mod sched;
pub mod sink;
pub mod xdp_prog;
pub mod xsk;
