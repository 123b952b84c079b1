//! Why a change to the service table was refused.

use super::{ServiceKey, fmt_addr_port};
use core::fmt;
use core::net::IpAddr;

/// Why a change to the service table was refused. Messages follow ipvsadm's wording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// `-A` of a service that exists.
    ServiceExists(ServiceKey),
    /// A command naming a service that does not exist.
    NoSuchService(ServiceKey),
    /// `-a` of a real server that exists.
    DestinationExists(IpAddr, u16),
    /// A command naming a real server that does not exist.
    NoSuchDestination(IpAddr, u16),
    /// An unknown scheduler name.
    UnknownScheduler(String),
    /// A value outside its range.
    OutOfRange {
        /// Which option.
        what: &'static str,
        /// Its value.
        value: u64,
        /// The allowed maximum.
        max: u64,
    },
    /// A combination that cannot work (e.g. mixed families, FullNAT without a pool).
    Invalid(String),
    /// The table holds as many services or real servers as it can.
    TableFull(&'static str),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::ServiceExists(k) => write!(f, "Service already exists: {k}"),
            ConfigError::NoSuchService(k) => write!(f, "No such service: {k}"),
            ConfigError::DestinationExists(a, p) => {
                write!(f, "Destination already exists: {}", fmt_addr_port(a, *p))
            }
            ConfigError::NoSuchDestination(a, p) => {
                write!(f, "No such destination: {}", fmt_addr_port(a, *p))
            }
            ConfigError::UnknownScheduler(s) => write!(f, "Scheduler not found: {s}"),
            ConfigError::OutOfRange { what, value, max } => {
                write!(f, "{what} {value} is out of range (0..={max})")
            }
            ConfigError::Invalid(s) => write!(f, "{s}"),
            ConfigError::TableFull(what) => write!(f, "too many {what}"),
        }
    }
}

impl std::error::Error for ConfigError {}
