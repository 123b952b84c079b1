//! High availability: VRRP (keepalived's peer on the wire) and IPVS connection sync.
//!
//! The VRRP runner ([`vrrp`]) is a thread of its own: it owns the sockets, the instances'
//! state machines, the tracking scripts and the notify commands, and sends adverts on time
//! whatever the control loop is doing. When an instance becomes master or leaves, it tells the
//! control loop ([`HaEvent`]), which puts the addresses on the interface (or takes them off)
//! and steers the services on them (or stops), then answers; only then are the gratuitous ARPs
//! sent, so that traffic they attract finds the dataplane ready.

pub mod scripts;
pub mod state;
pub mod sync;
pub mod vrrp;

use crossbeam_channel::Sender;
use std::net::IpAddr;

/// An address a VRRP instance holds while master.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HeldAddr {
    /// Interface it goes on.
    pub dev: String,
    /// The address.
    pub addr: IpAddr,
    /// Its prefix length.
    pub prefix: u8,
}

/// What the VRRP runner tells the control loop.
#[derive(Debug)]
pub enum HaEvent {
    /// Instance `instance` became master (`master`) or stopped being it; `addrs` are its
    /// addresses. `done` is answered once the addresses and steering follow.
    Mastership {
        /// The instance.
        instance: String,
        /// Master now?
        master: bool,
        /// Its addresses.
        addrs: Vec<HeldAddr>,
        /// Answered when applied.
        done: Option<Sender<()>>,
    },
}
