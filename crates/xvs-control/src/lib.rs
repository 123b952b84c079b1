//! The control plane of xvs: the YAML configuration (parsed and validated with file, line and
//! field in every error) and what turns it into the forwarding core's service table.

pub mod config;
mod lines;

pub use config::{Config, ConfigError, Loaded};
