//! The forwarding core of xvs: pure and deterministic.
//!
//! Given a batch of Ethernet frames and the current time, [`Forwarder::process`] decides for each
//! frame whether to transmit it (and on which port), pass it to the host stack, or drop it with a
//! counted reason, rewriting it in place for DR, NAT, TUN and FullNAT. Nothing here reads a
//! clock, spawns a thread or makes a syscall: time is passed in, the I/O layer fills the
//! neighbour table, and the control plane publishes [`Snapshot`]s.
//!
//! Layout: [`service`] (virtual services and real servers), [`sched`] (the IPVS schedulers behind
//! one trait), [`conn`] (the sharded connection table and protocol state), [`net`] (ports,
//! routes, neighbours), [`forward`] (the per-frame pipeline), [`stats`] (per-worker counters).

pub mod conn;
mod drop_reason;
pub mod forward;
pub mod net;
pub mod sched;
pub mod service;
mod snapshot;
pub mod stats;
mod time;

pub use drop_reason::DropReason;
pub use forward::{Forwarder, Frame, SyncReject, Trace, Verdict};
pub use snapshot::{Options, Snapshot};
pub use time::Time;

/// Index of a virtual service; stable for the service's lifetime (counters are kept by it).
pub type ServiceId = u16;
/// Index of a real server; stable while any connection may refer to it.
pub type RealId = u32;
/// Index of a forwarding port (an interface the I/O layer serves).
pub type PortId = u16;
