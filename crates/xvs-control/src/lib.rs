//! The control plane of xvs: the YAML configuration (parsed and validated with file, line and
//! field in every error), configuration changes (ipvsadm's commands) and their diffs, the
//! control-socket protocol, ipvsadm's listing formats, and IPVS's rate estimator.

pub mod change;
pub mod check;
pub mod config;
pub mod health_listing;
pub mod keepalived;
mod lines;
pub mod listing;
pub mod proto;
pub mod rate;
pub mod vrrp;

pub use config::{Config, ConfigError, Loaded};
