//! I/O for xvs, and all of its unsafe code: AF_XDP sockets and UMEM (over xsk-rs), the XDP
//! steering program (over libbpf), and the kernel's network state (rtnetlink).
//!
//! This crate moves frames; it knows nothing about services or connections. Every `unsafe`
//! block carries a `// SAFETY:` note saying why it is sound.
#![allow(unsafe_code)]

pub mod bpf;
pub mod netlink;
pub mod xsk;
