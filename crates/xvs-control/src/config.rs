//! The YAML configuration of xvsd: interfaces and daemon settings, timeouts, virtual services
//! with their real servers, and firewall-mark rules. Parsing and validation report the file,
//! the line and the field of the first problem, and nothing is applied unless all is valid.

use crate::change::MethodName;
use crate::check::{CheckConfig, Health, RealCheck, ServiceHealth};
use crate::lines::Lines;
use serde::Deserialize;
use std::fmt;
use std::net::IpAddr;
use std::path::Path;
use xvs_core::conn::Timeouts;
use xvs_core::service::SchedFlags;
use xvs_core::service::{
    Family, MarkRule, Persistence, Protocol, RealOptions, ServiceKey, ServiceOptions, ServiceTable,
};

/// Default number of services and real servers a table holds.
pub const DEFAULT_MAX_SERVICES: usize = 1024;
/// Default number of real servers a table holds (live and removed).
pub const DEFAULT_MAX_REALS: usize = 8192;

/// How the XDP program attaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
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

/// How AF_XDP sockets bind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
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

/// Who runs a served queue's receive work, and when (see docs/architecture.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
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

/// `polling:` — the knobs of the polling mechanisms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
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

/// A real server.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RealConfig {
    /// Address.
    pub addr: IpAddr,
    /// Port (the virtual port if absent).
    pub port: Option<u16>,
    /// `dr` (default), `nat`, `tun` or `fullnat`.
    #[serde(default)]
    pub method: MethodName,
    /// Weight (default 1).
    #[serde(default = "default_weight")]
    pub weight: u32,
    /// Upper connection threshold (`-x`).
    #[serde(default)]
    pub u_threshold: u32,
    /// Lower connection threshold (`-y`).
    #[serde(default)]
    pub l_threshold: u32,
    /// Health check (the service's `check` if absent).
    pub check: Option<CheckConfig>,
    /// Command run when the server comes up (the service's if absent).
    pub notify_up: Option<String>,
    /// Command run when the server goes down (the service's if absent).
    pub notify_down: Option<String>,
}

fn default_weight() -> u32 {
    1
}

/// Protocol names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum FamilyConfig {
    /// IPv4.
    #[default]
    Ipv4,
    /// IPv6.
    Ipv6,
}

/// A virtual service: `proto` + `vip` + `port`, or `fwmark` (+ `family`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Interfaces served, in port order.
    #[serde(default)]
    pub interfaces: Vec<String>,
    /// Queues per interface; one worker per queue (default 1).
    pub queues: Option<u32>,
    /// CPU cores to pin the workers to, in order.
    #[serde(default)]
    pub cores: Vec<usize>,
    /// XDP attach mode.
    pub xdp_mode: Option<XdpModeConfig>,
    /// AF_XDP bind mode.
    pub bind_mode: Option<BindModeConfig>,
    /// Worker polling.
    pub poll_mode: Option<PollModeConfig>,
    /// Knobs of the polling mechanisms.
    #[serde(default)]
    pub polling: PollingConfig,
    /// New TCP connections (SYNs) per second each receive queue admits; beyond it the XDP
    /// program drops them (0: no budget).
    pub syn_budget: Option<u64>,
    /// SYNs admitted at once above `syn_budget`.
    pub syn_burst: Option<u64>,
    /// Connection-table entries.
    pub conn_table_size: Option<usize>,
    /// Add and remove the VIPs as addresses of the first interface.
    #[serde(default)]
    pub manage_vips: bool,
    /// Control socket path.
    pub control_socket: Option<String>,
    /// Log level.
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
    fn error(&self, field: impl Into<String>, message: impl Into<String>) -> ConfigError {
        let field = field.into();
        ConfigError {
            file: self.file.clone(),
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
        let text = inner.to_string();
        // serde_yaml_ng may name the field (or its parent) itself; the error names it once.
        let message = match text.split_once(": ") {
            Some((at, rest)) if path.starts_with(at) => strip_location(rest),
            _ => strip_location(&text),
        };
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

/// serde_yaml_ng appends " at line L column C"; the error already carries the line.
fn strip_location(msg: &str) -> String {
    match msg.find(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
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

/// The parts of a configuration the forwarding core uses.
#[derive(Debug, Clone)]
pub struct Applied {
    /// Services and real servers.
    pub services: ServiceTable,
    /// Timeouts.
    pub timeouts: Timeouts,
    /// Health checks and policies.
    pub health: Health,
}

fn parse_prefix(s: &str) -> Option<(IpAddr, u8)> {
    let (a, l) = s.split_once('/').unwrap_or((s, ""));
    let addr: IpAddr = a.trim().parse().ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let len = if l.is_empty() {
        max
    } else {
        l.trim().parse().ok()?
    };
    (len <= max).then_some((addr, len))
}

fn parse_ports(s: &str) -> Option<(u16, u16)> {
    match s.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
            (a <= b).then_some((a, b))
        }
        None => {
            let p = s.trim().parse().ok()?;
            Some((p, p))
        }
    }
}

impl Loaded {
    /// Checks the daemon settings and builds the service table; the first problem is reported
    /// with its line and field.
    pub fn apply(&self, max_services: usize, max_reals: usize) -> Result<Applied, ConfigError> {
        let c = &self.config;
        if c.queues == Some(0) {
            return Err(self.error("queues", "must be at least 1"));
        }
        let p = &c.polling;
        for (field, v, lo, hi, unit) in [
            ("polling.sleep_us", p.sleep_us, 0, 10_000, "µs"),
            ("polling.busy_poll_us", p.busy_poll_us, 1, 10_000, "µs"),
            (
                "polling.busy_poll_budget",
                p.busy_poll_budget,
                1,
                1024,
                "frames",
            ),
            (
                "polling.defer_hard_irqs",
                p.defer_hard_irqs,
                0,
                1_000_000,
                "completions",
            ),
            (
                "polling.gro_flush_timeout_us",
                p.gro_flush_timeout_us,
                0,
                1_000_000,
                "µs",
            ),
        ] {
            if let Some(v) = v.filter(|v| !(lo..=hi).contains(v)) {
                return Err(self.error(field, format!("{v} is outside {lo}..={hi} {unit}")));
            }
        }
        if let Some(b) = c.syn_burst.filter(|&b| b == 0 || b > 1 << 20) {
            return Err(self.error("syn_burst", format!("{b} is outside 1..=1048576 SYNs")));
        }
        if let Some(n) = c.conn_table_size {
            if n < 64 {
                return Err(
                    self.error("conn_table_size", format!("{n} is below the minimum of 64"))
                );
            }
        }
        for (i, name) in c.interfaces.iter().enumerate() {
            if name.is_empty() || name.len() > 15 {
                return Err(self.error(
                    format!("interfaces[{i}]"),
                    format!("'{name}' is not an interface name"),
                ));
            }
            if c.interfaces[..i].contains(name) {
                return Err(self.error(
                    format!("interfaces[{i}]"),
                    format!("'{name}' is listed twice"),
                ));
            }
        }
        let mut timeouts = Timeouts::default();
        for (f, v) in [
            ("tcp", c.timeouts.tcp),
            ("tcpfin", c.timeouts.tcpfin),
            ("udp", c.timeouts.udp),
        ] {
            if v == Some(0) {
                return Err(self.error(format!("timeouts.{f}"), "must be at least 1 second"));
            }
        }
        timeouts.set_ipvsadm(
            c.timeouts.tcp.unwrap_or(0),
            c.timeouts.tcpfin.unwrap_or(0),
            c.timeouts.udp.unwrap_or(0),
        );

        let mut t = ServiceTable::new(max_services, max_reals);
        let mut health: Health = Vec::new();
        for (i, s) in c.services.iter().enumerate() {
            let at = format!("services[{i}]");
            let key = match (s.fwmark, s.proto, s.vip) {
                (Some(mark), None, None) => {
                    if s.port.is_some() {
                        return Err(
                            self.error(format!("{at}.port"), "a firewall-mark service has no port")
                        );
                    }
                    let family = match s.family {
                        FamilyConfig::Ipv4 => Family::V4,
                        FamilyConfig::Ipv6 => Family::V6,
                    };
                    ServiceKey::Fwmark { mark, family }
                }
                (None, Some(proto), Some(vip)) => ServiceKey::Addr {
                    proto: proto.into(),
                    addr: vip,
                    port: s.port.ok_or_else(|| {
                        self.error(format!("{at}.port"), "missing (use 0 for all ports)")
                    })?,
                },
                (Some(_), _, _) => {
                    return Err(self.error(&at, "give either fwmark, or proto and vip, not both"));
                }
                (None, None, _) => {
                    return Err(self.error(format!("{at}.proto"), "missing (tcp, udp or sctp)"));
                }
                (None, Some(_), None) => return Err(self.error(format!("{at}.vip"), "missing")),
            };
            let flags = SchedFlags::parse(&s.flags.join(","))
                .map_err(|e| self.error(format!("{at}.flags"), e))?;
            let persistence = s.persistence.map(|p| Persistence {
                timeout: p.timeout,
                prefix_len: p.netmask.unwrap_or(match key.family() {
                    Family::V4 => 32,
                    Family::V6 => 128,
                }),
            });
            if let Some(p) = s.persistence {
                if p.timeout == 0 {
                    return Err(self.error(
                        format!("{at}.persistence.timeout"),
                        "must be at least 1 second",
                    ));
                }
            }
            let options = ServiceOptions {
                scheduler: s.scheduler.clone(),
                flags,
                persistence,
                one_packet: s.one_packet,
                local_addrs: s.local_addrs.clone(),
            };
            t.add_service(key, options).map_err(|e| {
                let field = match e {
                    xvs_core::service::ConfigError::UnknownScheduler(_) => {
                        format!("{at}.scheduler")
                    }
                    _ => at.clone(),
                };
                self.error(field, e.to_string())
            })?;
            let mut checks = Vec::new();
            for (j, r) in s.reals.iter().enumerate() {
                let o = RealOptions {
                    method: r.method.into(),
                    weight: r.weight,
                    u_threshold: r.u_threshold,
                    l_threshold: r.l_threshold,
                };
                let rid = t.add_real(&key, r.addr, r.port, o).map_err(|e| {
                    let field = match e {
                        xvs_core::service::ConfigError::OutOfRange { what: "weight", .. } => {
                            format!("{at}.reals[{j}].weight")
                        }
                        _ => format!("{at}.reals[{j}]"),
                    };
                    self.error(field, e.to_string())
                })?;
                let (check, field) = match (&r.check, &s.check) {
                    (Some(c), _) => (c, format!("{at}.reals[{j}].check")),
                    (None, Some(c)) => (c, format!("{at}.check")),
                    (None, None) => continue,
                };
                check
                    .validate()
                    .map_err(|(f, m)| self.error(format!("{field}.{f}"), m))?;
                let port = t.real(rid).map_or(0, |x| x.port);
                checks.push(RealCheck {
                    addr: r.addr,
                    port,
                    check: check.clone(),
                    notify_up: r.notify_up.clone().or_else(|| s.notify_up.clone()),
                    notify_down: r.notify_down.clone().or_else(|| s.notify_down.clone()),
                });
            }
            if let Some(c) = &s.check {
                c.validate()
                    .map_err(|(f, m)| self.error(format!("{at}.check.{f}"), m))?;
            }
            if let Some(sr) = &s.sorry_server {
                if sr.check.is_some() {
                    return Err(self.error(
                        format!("{at}.sorry_server.check"),
                        "the sorry server is not checked",
                    ));
                }
                let o = RealOptions {
                    method: sr.method.into(),
                    weight: sr.weight,
                    u_threshold: sr.u_threshold,
                    l_threshold: sr.l_threshold,
                };
                t.set_sorry(&key, Some((sr.addr, sr.port, o)))
                    .map_err(|e| self.error(format!("{at}.sorry_server"), e.to_string()))?;
            }
            if s.quorum as usize > s.reals.len() {
                return Err(self.error(
                    format!("{at}.quorum"),
                    format!(
                        "{} is more than the {} real servers",
                        s.quorum,
                        s.reals.len()
                    ),
                ));
            }
            health.push((
                key,
                ServiceHealth {
                    inhibit_on_failure: s.inhibit_on_failure,
                    quorum: s.quorum,
                    checks,
                },
            ));
        }
        let mut rules = Vec::new();
        for (i, m) in c.marks.iter().enumerate() {
            let at = format!("marks[{i}]");
            let (dst, prefix_len) = parse_prefix(&m.dst).ok_or_else(|| {
                self.error(
                    format!("{at}.dst"),
                    format!("'{}' is not ADDRESS/PREFIX", m.dst),
                )
            })?;
            let ports = match &m.ports {
                Some(p) => parse_ports(p).ok_or_else(|| {
                    self.error(
                        format!("{at}.ports"),
                        format!("'{p}' is not PORT or LOW-HIGH"),
                    )
                })?,
                None => (0, u16::MAX),
            };
            rules.push(MarkRule {
                mark: m.mark,
                proto: m.proto.map(Into::into),
                dst,
                prefix_len,
                ports,
            });
        }
        t.set_mark_rules(rules);
        Ok(Applied {
            services: t,
            timeouts,
            health,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
interfaces: [ext0, int0]
queues: 2
poll_mode: adaptive
timeouts: { tcp: 600 }
services:
  - proto: tcp
    vip: 198.51.100.10
    port: 80
    scheduler: wrr
    reals:
      - { addr: 198.18.1.11, port: 8080, method: nat, weight: 3 }
      - { addr: 198.18.1.12, method: nat, weight: 2 }
  - fwmark: 7
    scheduler: rr
    persistence: { timeout: 60, netmask: 24 }
    reals:
      - { addr: 198.18.1.13 }
marks:
  - { mark: 7, proto: tcp, dst: 198.51.100.0/24, ports: 8000-8999 }
"#;

    #[test]
    fn parses_and_applies() {
        let l = parse(GOOD, "good.yaml").unwrap();
        assert_eq!(l.config.interfaces, ["ext0", "int0"]);
        assert_eq!(l.config.poll_mode, Some(PollModeConfig::Adaptive));
        let a = l.apply(16, 64).unwrap();
        assert_eq!(a.timeouts.ipvsadm_triple(), (600, 120, 300));
        assert_eq!(a.services.services().count(), 2);
        let key = ServiceKey::Addr {
            proto: Protocol::Tcp,
            addr: "198.51.100.10".parse().unwrap(),
            port: 80,
        };
        let svc = a.services.find(&key).unwrap();
        assert_eq!(svc.options.scheduler, "wrr");
        let r2 = a
            .services
            .find_real(svc, &"198.18.1.12".parse().unwrap(), 80)
            .unwrap();
        assert_eq!(
            (r2.options.weight, r2.options.method),
            (2, xvs_core::service::Method::Nat)
        );
        assert_eq!(a.services.mark_rules()[0].ports, (8000, 8999));
    }

    fn err(text: &str) -> ConfigError {
        match parse(text, "bad.yaml") {
            Err(e) => e,
            Ok(l) => l.apply(16, 64).unwrap_err(),
        }
    }

    #[test]
    fn errors_name_file_line_and_field() {
        let e = err(
            "services:\n  - proto: tcp\n    vip: 192.0.2.1\n    port: 80\n    scheduler: nope\n",
        );
        assert_eq!(
            (e.line, e.field.as_deref()),
            (Some(5), Some("services[0].scheduler"))
        );
        assert!(
            e.to_string()
                .starts_with("bad.yaml:5: services[0].scheduler: Scheduler not found: nope"),
            "{e}"
        );

        let e = err(
            "services:\n  - proto: tcp\n    vip: 192.0.2.1\n    port: 80\n    reals:\n      - addr: 192.0.2.9\n        weight: 70000\n",
        );
        assert_eq!(
            (e.line, e.field.as_deref()),
            (Some(7), Some("services[0].reals[0].weight")),
            "{e}"
        );

        let e = err("services:\n  - proto: tcp\n    vip: not-an-ip\n    port: 80\n");
        assert_eq!(e.line, Some(3), "{e}");
        assert_eq!(e.field.as_deref(), Some("services[0].vip"), "{e}");

        let e = err("interfaces: [a]\nbogus: 1\n");
        assert_eq!(e.line, Some(2), "{e}");
        assert!(e.message.starts_with("unknown field `bogus`"), "{e}");

        let e = err("services:\n  - proto: tcp\n    vip: 192.0.2.1\n");
        assert_eq!(e.field.as_deref(), Some("services[0].port"), "{e}");

        let e = err("marks:\n  - { mark: 1, dst: 192.0.2.0/40 }\n");
        assert_eq!(
            (e.line, e.field.as_deref()),
            (Some(2), Some("marks[0].dst")),
            "{e}"
        );

        let e = err("queues: 0\n");
        assert_eq!(
            (e.line, e.field.as_deref()),
            (Some(1), Some("queues")),
            "{e}"
        );

        let e = err(
            "services:\n  - proto: tcp\n    vip: 192.0.2.1\n    port: 80\n  - proto: tcp\n    vip: 192.0.2.1\n    port: 80\n",
        );
        assert_eq!(
            (e.line, e.field.as_deref()),
            (Some(5), Some("services[1]")),
            "{e}"
        );
        assert!(e.message.contains("Service already exists"), "{e}");
    }

    const CHECKED: &str = "services:
  - proto: tcp
    vip: 192.0.2.1
    port: 80
    scheduler: rr
    check: { type: http, path: /health, status: [200, 204], interval: 0.5, fall: 2 }
    inhibit_on_failure: true
    quorum: 1
    notify_down: /usr/local/bin/page-me
    sorry_server: { addr: 192.0.2.99 }
    reals:
      - addr: 192.0.2.11
      - addr: 192.0.2.12
        check: { type: misc, command: /bin/true }
";

    #[test]
    fn health_settings() {
        let a = parse(CHECKED, "h.yaml").unwrap().apply(16, 64).unwrap();
        let (key, h) = &a.health[0];
        assert_eq!(key.to_string(), "TCP 192.0.2.1:80");
        assert!(h.inhibit_on_failure);
        assert_eq!(h.quorum, 1);
        assert_eq!(h.checks.len(), 2);
        assert_eq!(h.checks[0].check.to_string(), "HTTP GET /health [200,204]");
        assert_eq!((h.checks[0].port, h.checks[0].check.interval), (80, 0.5));
        assert_eq!(h.checks[1].check.to_string(), "MISC /bin/true");
        assert_eq!(
            h.checks[1].notify_down.as_deref(),
            Some("/usr/local/bin/page-me")
        );
        let svc = a.services.find(key).unwrap();
        let sorry = a.services.real(svc.sorry.unwrap()).unwrap();
        assert_eq!(
            (sorry.addr.to_string(), sorry.port),
            ("192.0.2.99".to_string(), 80)
        );
    }

    #[test]
    fn bad_health_settings_are_located() {
        let e = err(&CHECKED.replace("interval: 0.5", "interval: -1"));
        assert_eq!(
            (e.line, e.field.as_deref()),
            (Some(6), Some("services[0].check.interval")),
            "{e}"
        );
        let e = err(&CHECKED.replace("type: misc, command: /bin/true", "type: misc"));
        assert_eq!(
            (e.line, e.field.as_deref()),
            (Some(14), Some("services[0].reals[1].check.command")),
            "{e}"
        );
        let e = err(&CHECKED.replace("type: http, path: /health,", "type: http,"));
        assert_eq!(e.field.as_deref(), Some("services[0].check.path"), "{e}");
        assert!(e.message.starts_with("missing"), "{e}");
        let e = err(&CHECKED.replace("type: misc", "type: smtp"));
        assert_eq!(e.line, Some(14), "{e}");
        assert!(e.message.starts_with("unknown variant `smtp`"), "{e}");
        let e = err(&CHECKED.replace("quorum: 1", "quorum: 3"));
        assert_eq!(e.field.as_deref(), Some("services[0].quorum"), "{e}");
    }

    #[test]
    fn example_configurations_load_and_apply() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config");
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
            .collect();
        files.sort();
        assert!(
            files.len() >= 5,
            "example configurations in {}: {files:?}",
            dir.display()
        );
        for f in &files {
            let loaded = load(f).unwrap_or_else(|e| panic!("{e}"));
            let applied = loaded.apply(64, 256).unwrap_or_else(|e| panic!("{e}"));
            assert!(applied.services.services().count() > 0, "{}", f.display());
        }
    }
}
