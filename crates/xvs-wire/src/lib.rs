//! Typed views over the bytes of network frames, in the style of smoltcp's `wire` module.
//!
//! Every header type is a `Packet<T: AsRef<[u8]>>` wrapper around a buffer. Construct it with
//! `new_checked` (or `new_unchecked` followed by `check_len`); after a successful check no
//! accessor can panic. Getters live on `T: AsRef<[u8]>`, setters on `T: AsMut<[u8]>`.
//!
//! The crate does no I/O, never allocates and contains no unsafe code. Errors say which layer
//! failed, what it needed and what it found.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

pub mod announce;
pub mod arp;
pub mod checksum;
pub mod emit;
pub mod encap;
mod error;
pub mod ethernet;
pub mod flow;
pub mod icmpv4;
pub mod icmpv6;
pub mod ipv4;
pub mod ipv6;
pub mod ipvs_sync;
pub mod sctp;
pub mod summary;
pub mod tcp;
pub mod transport;
pub mod udp;
mod view;
pub mod vrrp;

pub use error::{Layer, WireError};
pub use ethernet::MacAddr;
pub use flow::FlowKey;

/// Result type of this crate.
pub type Result<T> = core::result::Result<T, WireError>;

/// IP protocol numbers used by xvs.
pub mod ip_proto {
    /// Hop-by-hop options (IPv6 extension header).
    pub const HOPOPT: u8 = 0;
    /// ICMP for IPv4.
    pub const ICMP: u8 = 1;
    /// IPv4 encapsulated in IP (IPIP, used by TUN mode).
    pub const IPIP: u8 = 4;
    /// Transmission Control Protocol.
    pub const TCP: u8 = 6;
    /// User Datagram Protocol.
    pub const UDP: u8 = 17;
    /// IPv6 encapsulated in IP (used by TUN mode for IPv6 services).
    pub const IPV6: u8 = 41;
    /// IPv6 routing header.
    pub const IPV6_ROUTE: u8 = 43;
    /// IPv6 fragment header.
    pub const IPV6_FRAG: u8 = 44;
    /// Generic routing encapsulation.
    pub const GRE: u8 = 47;
    /// Encapsulating security payload.
    pub const ESP: u8 = 50;
    /// Authentication header.
    pub const AH: u8 = 51;
    /// ICMP for IPv6.
    pub const ICMPV6: u8 = 58;
    /// IPv6 "no next header".
    pub const IPV6_NONXT: u8 = 59;
    /// IPv6 destination options.
    pub const IPV6_OPTS: u8 = 60;
    /// Stream Control Transmission Protocol.
    pub const SCTP: u8 = 132;
}

/// Reads a big-endian `u16` at `at`. Callers guarantee the bounds (after `check_len`).
#[inline(always)]
pub(crate) fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// Reads a big-endian `u32` at `at`.
#[inline(always)]
pub(crate) fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Writes a big-endian `u16` at `at`.
#[inline(always)]
pub(crate) fn put16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}
