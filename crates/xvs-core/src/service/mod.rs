//! Virtual services and real servers: the immutable table the workers read, and the checked
//! mutations (ipvsadm's -A/-E/-D/-a/-e/-d) the control plane uses to build the next one.
//!
//! [`key`] says what identifies a service, [`options`] how it schedules and how its real
//! servers are reached, [`mark`] the firewall-mark rules, [`addr`] the address forms of keys
//! and listings, [`error`] why a change was refused; [`table`] is the table and its lookups,
//! `mutate` its checked changes.

pub mod addr;
pub mod error;
pub mod key;
pub mod mark;
mod mutate;
pub mod options;
pub mod table;
#[cfg(test)]
mod tests;

pub(crate) use addr::refuse_v4_mapped;
pub use addr::{addr16, fmt_addr_port, ip_from16, is_v4_mapped};
pub(crate) use addr::{mask_addr, prefix_match};
pub use error::ConfigError;
pub use key::{Family, Protocol, ServiceKey};
pub use mark::MarkRule;
pub use options::{
    MAX_WEIGHT, Method, Persistence, RealOptions, RealServer, SCHEDULERS, SchedFlags, Service,
    ServiceOptions, Tunnel, TunnelCsum, TunnelKind, is_scheduler,
};
pub use table::ServiceTable;
