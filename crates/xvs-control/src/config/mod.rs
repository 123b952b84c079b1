//! The YAML configuration of xvsd: interfaces and daemon settings, timeouts, virtual services
//! with their real servers, and firewall-mark rules. Parsing and validation report the file,
//! the line and the field of the first problem, and nothing is applied unless all is valid.

//!
//! This module is the file's form and its parsing; [`apply`] turns it into the changes that
//! build the service table (the same `Change`s xvsadm sends, applied by the same code) and the
//! health checks.

pub mod apply;
pub mod ha;
mod indent;
#[cfg(test)]
mod tests;

pub use apply::Applied;

use crate::change::RealSpec;
use crate::check::CheckConfig;
use crate::lines::Lines;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::IpAddr;
use std::path::Path;
use xvs_core::service::Protocol;

/// Default number of services and real servers a table holds.
pub const DEFAULT_MAX_SERVICES: usize = 1024;
/// Default number of real servers a table holds (live and removed).
pub const DEFAULT_MAX_REALS: usize = 8192;
/// Default UMEM frames per served interface and worker.
pub const DEFAULT_UMEM_FRAMES: u32 = 4096;
/// Default receive/transmit ring entries.
pub const DEFAULT_RING_SIZE: u32 = 1024;

/// Checks a ring size (a power of two in 64..=8192).
pub fn check_ring_size(n: u32) -> Result<(), String> {
    if n.is_power_of_two() && (64..=8192).contains(&n) {
        Ok(())
    } else {
        Err(format!("{n} is not a power of two in 64..=8192 entries"))
    }
}

/// Checks a number of UMEM frames per interface and worker (at least two batches' worth, at
/// most 1 Mi frames: 4 GiB).
pub fn check_umem_frames(n: u32) -> Result<(), String> {
    if (128..=1 << 20).contains(&n) {
        Ok(())
    } else {
        Err(format!("{n} is outside 128..=1048576 frames"))
    }
}

/// How the XDP program attaches (`xdp_mode:`, `--xdp-mode`).
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum XdpModeConfig {
    /// Native, falling back to generic.
    #[default]
    Auto,
    /// Native only.
    Native,
    /// Generic (SKB) only.
    Generic,
}

/// How AF_XDP sockets bind (`bind_mode:`, `--bind-mode`).
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum BindModeConfig {
    /// Zero-copy if possible, else copy.
    #[default]
    Auto,
    /// Copy mode.
    Copy,
    /// Zero-copy only.
    Zerocopy,
}

/// Who runs a served queue's receive work, and when (`poll_mode:`, `--poll-mode`; see
/// docs/architecture.md).
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum PollModeConfig {
    /// prefer-busy where the AF_XDP sockets have a NAPI id, else threaded-yield.
    #[default]
    Auto,
    /// Preferred busy polling: the worker's system calls run the queue's receive.
    PreferBusy,
    /// Threaded NAPI pinned below a real-time worker that sleeps only when idle.
    ThreadedYield,
    /// Spin on the rings, leaving the kernel's receive as it is.
    Busy,
    /// Spin while busy, then sleep in poll(2) with a growing timeout.
    Adaptive,
}

impl PollModeConfig {
    /// Its name in the file and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            PollModeConfig::Auto => "auto",
            PollModeConfig::PreferBusy => "prefer-busy",
            PollModeConfig::ThreadedYield => "threaded-yield",
            PollModeConfig::Busy => "busy",
            PollModeConfig::Adaptive => "adaptive",
        }
    }
}

/// `polling:` — the knobs of the polling mechanisms.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct PollingConfig {
    /// threaded-yield: microseconds a worker with empty rings sleeps; 0 (the default): it
    /// blocks until the kernel has received a frame.
    pub sleep_us: Option<u32>,
    /// prefer-busy: `SO_BUSY_POLL` microseconds (default 20).
    pub busy_poll_us: Option<u32>,
    /// prefer-busy: `SO_BUSY_POLL_BUDGET` frames per poll (default 64).
    pub busy_poll_budget: Option<u32>,
    /// prefer-busy: the interface's `napi_defer_hard_irqs` (default 2).
    pub defer_hard_irqs: Option<u32>,
    /// prefer-busy: the interface's `gro_flush_timeout` in microseconds (default 200).
    pub gro_flush_timeout_us: Option<u32>,
    /// threaded-yield: receive coalescing in microseconds (default 100; 0: the interface's own
    /// settings).
    pub coalesce_us: Option<u32>,
}

/// `timeouts:` — ipvsadm's `--set tcp tcpfin udp` (seconds).
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TimeoutsConfig {
    /// Established TCP.
    pub tcp: Option<u32>,
    /// TCP after FIN.
    pub tcpfin: Option<u32>,
    /// UDP.
    pub udp: Option<u32>,
}

/// `persistence:` of a service.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PersistenceConfig {
    /// Seconds (ipvsadm's default 300).
    #[serde(default = "default_persistence")]
    pub timeout: u32,
    /// Client netmask as a prefix length (32 / 128 by default).
    pub netmask: Option<u8>,
}

fn default_persistence() -> u32 {
    300
}

/// A real server: what `-a` gives it (the same fields, read by the same type), and what only
/// a file has: its health check and notify commands.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RealConfig {
    /// Address, port, method, weight and thresholds.
    #[serde(flatten)]
    pub spec: RealSpec,
    /// Health check (the service's `check` if absent; a sorry server has none).
    #[serde(default)]
    pub check: Option<CheckConfig>,
    /// Command run when the server comes up (the service's if absent).
    #[serde(default)]
    pub notify_up: Option<String>,
    /// Command run when the server goes down (the service's if absent).
    #[serde(default)]
    pub notify_down: Option<String>,
    /// Fields neither of the above knows (serde cannot refuse them itself beside a flattened
    /// struct): refused when the file is applied, with their names.
    #[serde(flatten)]
    #[cfg_attr(feature = "schema", schemars(skip))]
    pub unknown: std::collections::BTreeMap<String, serde_yaml_ng::Value>,
}

/// Protocol names.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProtoConfig {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// SCTP.
    Sctp,
}

impl From<ProtoConfig> for Protocol {
    fn from(p: ProtoConfig) -> Protocol {
        match p {
            ProtoConfig::Tcp => Protocol::Tcp,
            ProtoConfig::Udp => Protocol::Udp,
            ProtoConfig::Sctp => Protocol::Sctp,
        }
    }
}

/// Address family names.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum FamilyConfig {
    /// IPv4.
    #[default]
    Ipv4,
    /// IPv6.
    Ipv6,
}

/// A virtual service: `proto` + `vip` + `port`, or `fwmark` (+ `family`).
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    /// Protocol of an address service.
    pub proto: Option<ProtoConfig>,
    /// Virtual IP.
    pub vip: Option<IpAddr>,
    /// Virtual port (0 = all ports).
    pub port: Option<u16>,
    /// Firewall mark of a mark service.
    pub fwmark: Option<u32>,
    /// Family of a mark service.
    #[serde(default)]
    pub family: FamilyConfig,
    /// Scheduler (default `wlc`).
    #[serde(default = "default_scheduler")]
    pub scheduler: String,
    /// Scheduler flags (`sh-fallback`, `sh-port`, `mh-fallback`, `mh-port`).
    #[serde(default)]
    pub flags: Vec<String>,
    /// Persistence.
    pub persistence: Option<PersistenceConfig>,
    /// One-packet scheduling (UDP).
    #[serde(default)]
    pub one_packet: bool,
    /// FullNAT local addresses.
    #[serde(default)]
    pub local_addrs: Vec<IpAddr>,
    /// Real servers.
    #[serde(default)]
    pub reals: Vec<RealConfig>,
    /// Health check of every real server that has none of its own.
    pub check: Option<CheckConfig>,
    /// On failure set weight 0 (shown as such by `-Ln`) instead of removing the server from
    /// the listing; either way it gets no new connections.
    #[serde(default)]
    pub inhibit_on_failure: bool,
    /// Takes new connections when no real server is healthy.
    pub sorry_server: Option<RealConfig>,
    /// Withdraw the service below this many healthy real servers.
    #[serde(default)]
    pub quorum: u32,
    /// Default command run when a real server comes up.
    pub notify_up: Option<String>,
    /// Default command run when a real server goes down.
    pub notify_down: Option<String>,
}

fn default_scheduler() -> String {
    "wlc".into()
}

/// A firewall-mark rule.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarkConfig {
    /// The mark.
    pub mark: u32,
    /// Protocol (any if absent).
    pub proto: Option<ProtoConfig>,
    /// Destination as `addr/len`.
    pub dst: String,
    /// Destination ports `lo-hi` or `port` (all if absent).
    pub ports: Option<String>,
}

/// The whole file.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Interfaces served, in port order.
    #[serde(default)]
    pub interfaces: Vec<String>,
    /// Queues per interface; one worker per queue [default: every receive queue the
    /// interfaces have].
    pub queues: Option<u32>,
    /// CPU cores to pin the workers to, in order [default: the first cores xvsd may use].
    #[serde(default)]
    pub cores: Vec<usize>,
    /// XDP attach mode [default: auto: native, else generic].
    pub xdp_mode: Option<XdpModeConfig>,
    /// AF_XDP bind mode [default: auto: zero-copy, else copy].
    pub bind_mode: Option<BindModeConfig>,
    /// Worker polling [default: auto].
    pub poll_mode: Option<PollModeConfig>,
    /// Knobs of the polling mechanisms.
    #[serde(default)]
    pub polling: PollingConfig,
    /// New TCP connections (SYNs) per second each receive queue admits; beyond it the XDP
    /// program drops them (0: no budget) [default: 100000].
    pub syn_budget: Option<u64>,
    /// SYNs admitted at once above `syn_budget` [default: 2048].
    pub syn_burst: Option<u64>,
    /// Connection-table entries, rounded up to a power of two [default: 1048576].
    pub conn_table_size: Option<usize>,
    /// AF_XDP: UMEM frames (4 KiB each) per served interface and worker [default: 4096].
    pub umem_frames: Option<u32>,
    /// AF_XDP: receive and transmit ring entries (a power of two; fill and completion rings
    /// are twice as large) [default: 1024].
    pub ring_size: Option<u32>,
    /// Add and remove the VIPs as addresses of the first interface.
    #[serde(default)]
    pub manage_vips: bool,
    /// Scale-out: hold the VIPs of services that are up on the `xvs-vip0` device for a routing
    /// daemon to announce (see docs/deployment.md).
    #[serde(default)]
    pub announce_vips: bool,
    /// Control socket path [default: /run/xvs/xvsd.sock].
    pub control_socket: Option<String>,
    /// Log level: error, warn, info, debug, trace, or a tracing filter [default: info].
    pub log_level: Option<String>,
    /// Prometheus endpoint address (`127.0.0.1:9469`); off if absent.
    pub metrics: Option<String>,
    /// Connection timeouts.
    #[serde(default)]
    pub timeouts: TimeoutsConfig,
    /// IPVS's `expire_nodest_conn`.
    #[serde(default)]
    pub expire_nodest_conn: bool,
    /// Virtual services.
    #[serde(default)]
    pub services: Vec<ServiceConfig>,
    /// Firewall-mark rules.
    #[serde(default)]
    pub marks: Vec<MarkConfig>,
    /// VRRP: scripts, instances, sync groups.
    #[serde(default)]
    pub vrrp: ha::VrrpConfig,
    /// IPVS connection synchronisation.
    #[serde(default)]
    pub sync: Option<ha::SyncConfig>,
}

/// A configuration problem, located.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// File (or `<text>`).
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// Field path (`services[0].reals[1].weight`), when known.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
        }
        if let Some(p) = &self.field {
            write!(f, ": {p}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// A parsed configuration together with where its fields are.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The configuration.
    pub config: Config,
    /// File name for messages.
    pub file: String,
    lines: Lines,
}

impl Loaded {
    /// A configuration read some other way (keepalived.conf): `places` says where each field
    /// path came from, for errors.
    pub fn from_places(
        config: Config,
        file: &str,
        places: impl IntoIterator<Item = (String, (String, usize))>,
    ) -> Loaded {
        Loaded {
            config,
            file: file.into(),
            lines: Lines::of_places(places),
        }
    }

    /// True if the file says `field` itself (`services`), even if empty.
    pub fn says(&self, field: &str) -> bool {
        self.lines.has(field)
    }

    pub(crate) fn error(
        &self,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> ConfigError {
        let field = field.into();
        ConfigError {
            file: self
                .lines
                .file(&field)
                .map_or_else(|| self.file.clone(), str::to_string),
            line: self.lines.line(&field),
            field: Some(field),
            message: message.into(),
        }
    }
}

/// Parses YAML text (`file` names it in errors).
pub fn parse(text: &str, file: &str) -> Result<Loaded, ConfigError> {
    let de = serde_yaml_ng::Deserializer::from_str(text);
    let config: Config = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let said = inner.to_string();
        // serde_yaml_ng may name the field (or its parent) itself; the error names it once.
        let message = match said.split_once(": ") {
            Some((at, rest)) if path.starts_with(at) => strip_location(rest),
            _ => strip_location(&said),
        };
        // An indentation mistake reads as something else to the parser: name it instead.
        if let Some((line, message)) = indent::hint(text) {
            return ConfigError {
                file: file.into(),
                line: Some(line),
                field: None,
                message,
            };
        }
        ConfigError {
            file: file.into(),
            line: inner.location().map(|l| l.line()),
            field: (path != ".").then_some(path),
            message,
        }
    })?;
    Ok(Loaded {
        config,
        file: file.into(),
        lines: Lines::of(text),
    })
}

/// serde_yaml_ng appends " at line L column C"; the error already carries the line. What it
/// quotes of the file (`invalid type: string "…"`) is left out: the file may not be a
/// configuration at all (`--reload /etc/shadow`), and its content does not belong in a log.
fn strip_location(msg: &str) -> String {
    let msg = match msg.find(" at line ") {
        Some(i) => &msg[..i],
        None => msg,
    };
    match (msg.find(": string \""), msg.rfind("\", expected")) {
        (Some(a), Some(b)) if b > a => format!("{}: string{}", &msg[..a], &msg[b + 1..]),
        _ => msg.to_string(),
    }
}

/// Reads a configuration: YAML, or with `keepalived` a keepalived.conf (its warnings about
/// what xvs does not implement returned beside it, as `FILE:LINE: message`).
pub fn load_file(path: &Path, keepalived: bool) -> Result<(Loaded, Vec<String>), ConfigError> {
    if keepalived {
        let (l, w) = crate::keepalived::load(path)?;
        Ok((l, w.iter().map(crate::keepalived::describe).collect()))
    } else {
        Ok((load(path)?, Vec::new()))
    }
}

/// Reads and parses a file.
pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: file.clone(),
        line: None,
        field: None,
        message: format!("cannot read: {e}"),
    })?;
    parse(&text, &file)
}
