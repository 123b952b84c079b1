//! One configuration change (ipvsadm's `-A/-E/-D/-a/-e/-d/-C/--set`), how it is written
//! (as the ipvsadm rule line it is, which is also the save format and the log line), how it is
//! sent over the control socket (JSON), and how a batch of them is applied to a service table.
//!
//! A batch is applied to a copy of the running table; the copy replaces the running one only if
//! every change in the batch succeeded, so a rejected batch changes nothing.

//!
//! [`key`] is the service key's text form, [`spec`] what services and real servers are given,
//! [`text`] the rule line, [`apply`] the application, [`diff`] the difference of two tables.

pub mod apply;
pub mod diff;
pub mod key;
pub mod spec;
#[cfg(test)]
mod tests;
pub mod text;

pub use apply::{Refusal, Rejected, apply, apply_one};
pub use diff::{diff, save, service_order};
pub use key::{Key, parse_addr_port, parse_fwmark};
pub use spec::{MethodName, RealSpec, ServiceSpec, TunCsumName, TunTypeName, TunnelSpec};
pub(crate) use text::mask_text;
pub use text::service_switch;

use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// One change to the running configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Change {
    /// `-A`: add a virtual service.
    AddService {
        /// The service.
        service: Key,
        /// Its options.
        #[serde(flatten)]
        spec: ServiceSpec,
    },
    /// `-E`: replace a service's options (unspecified options return to their defaults, as
    /// with ipvsadm).
    EditService {
        /// The service.
        service: Key,
        /// Its new options.
        #[serde(flatten)]
        spec: ServiceSpec,
    },
    /// `-D`: delete a service (its connections finish unless `expire_nodest_conn`).
    DeleteService {
        /// The service.
        service: Key,
    },
    /// `-a`: add a real server.
    AddReal {
        /// The service.
        service: Key,
        /// The real server.
        #[serde(flatten)]
        real: RealSpec,
    },
    /// `-e`: replace a real server's options.
    EditReal {
        /// The service.
        service: Key,
        /// The real server and its new options.
        #[serde(flatten)]
        real: RealSpec,
    },
    /// `-d`: delete a real server.
    DeleteReal {
        /// The service.
        service: Key,
        /// Address.
        addr: IpAddr,
        /// Port (the virtual port if absent).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        port: Option<u16>,
    },
    /// `-C`: delete every service.
    Clear,
    /// `--set TCP TCPFIN UDP` (0 leaves a value unchanged).
    SetTimeouts {
        /// Established TCP.
        tcp: u32,
        /// TCP after FIN.
        tcpfin: u32,
        /// UDP.
        udp: u32,
    },
}
