//! From a parsed file to what the daemon runs: the daemon settings checked, the services as
//! the [`Change`]s that build them (applied by `change::apply_one`, the code every xvsadm
//! command goes through, so a rule holds the same way for both), then what only a file has:
//! health checks, sorry servers, quorums and firewall-mark rules. Every problem is reported
//! with the file, line and field it comes from.

use super::{ConfigError, FamilyConfig, Loaded, ServiceConfig};
use crate::change::{self, Change, Key, ServiceSpec};
use crate::check::{Health, RealCheck, ServiceHealth};
use std::net::IpAddr;
use xvs_core::conn::Timeouts;
use xvs_core::service::{Family, MarkRule, ServiceKey, ServiceTable};

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

/// A change and the field path of the file it comes from.
pub struct Sourced {
    /// The change.
    pub change: Change,
    /// Where it is in the file (`services[2]`, `services[2].reals[0]`, `timeouts`).
    pub at: String,
}

impl ServiceConfig {
    /// The service as a `-A` gives it.
    pub fn spec(&self) -> ServiceSpec {
        ServiceSpec {
            scheduler: self.scheduler.clone(),
            flags: self.flags.join(","),
            persistent: self.persistence.map(|p| p.timeout),
            netmask: self.persistence.and_then(|p| p.netmask),
            one_packet: self.one_packet,
            local_addrs: self.local_addrs.clone(),
        }
    }
}

/// A log level (`error`, `warn`, `info`, `debug`, `trace`, `off`) or a filter of
/// `target=level` directives separated by commas, as xvsd's `--log-level` takes it.
pub fn check_log_level(s: &str) -> Result<(), String> {
    const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];
    let ok = !s.trim().is_empty()
        && s.split(',').all(|d| {
            let level = d.rsplit_once('=').map_or(d, |(target, l)| {
                if target.is_empty()
                    || !target
                        .chars()
                        .all(|c| c.is_alphanumeric() || "_:".contains(c))
                {
                    ""
                } else {
                    l
                }
            });
            LEVELS.contains(&level.trim().to_ascii_lowercase().as_str())
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "'{s}' is not a log level (error, warn, info, debug, trace, off) or a filter of \
             target=level directives"
        ))
    }
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
        self.check_settings()?;
        self.check_ha()?;
        let mut services = ServiceTable::new(max_services, max_reals);
        let mut timeouts = Timeouts::default();
        for s in self.changes()? {
            change::apply_one(&mut services, &mut timeouts, &s.change).map_err(|r| {
                let field = match r.field {
                    Some(f) => format!("{}.{f}", s.at),
                    None => s.at,
                };
                self.error(field, r.message)
            })?;
        }
        let mut health: Health = Vec::new();
        for (i, s) in self.config.services.iter().enumerate() {
            let key = self.key(i, s)?;
            health.push((key, self.service_health(i, s, &key, &mut services)?));
        }
        services.set_mark_rules(self.mark_rules()?);
        Ok(Applied {
            services,
            timeouts,
            health,
        })
    }

    /// The `vrrp:` and `sync:` sections.
    fn check_ha(&self) -> Result<(), ConfigError> {
        let c = &self.config;
        crate::vrrp::params::check(&c.vrrp).map_err(|(f, m)| self.error(format!("vrrp.{f}"), m))?;
        if c.announce_vips && !c.vrrp.instances.is_empty() {
            return Err(self.error(
                "announce_vips",
                "announcing VIPs to routers (all directors active) and VRRP (one director \
                 active) are alternatives: use one or the other",
            ));
        }
        if let Some(s) = &c.sync {
            if s.interface.is_empty() || s.interface.len() > 15 {
                return Err(self.error(
                    "sync.interface",
                    format!("'{}' is not an interface name", s.interface),
                ));
            }
            if let Some(i) = &s.instance
                && !c.vrrp.instances.iter().any(|x| &x.name == i)
            {
                return Err(self.error(
                    "sync.instance",
                    format!("no VRRP instance named '{i}' in vrrp.instances"),
                ));
            }
            if s.instance.is_some() && s.role.is_some() {
                return Err(self.error(
                    "sync.role",
                    "the role follows the instance; give one or the other",
                ));
            }
            if s.group.is_some_and(|g| !g.is_multicast()) {
                return Err(self.error("sync.group", "not a multicast address"));
            }
            if s.maxlen.is_some_and(|m| !(128..=65507).contains(&m)) {
                return Err(self.error("sync.maxlen", "outside 128..=65507 bytes"));
            }
            if s.port == Some(0) || s.ttl == Some(0) {
                return Err(self.error("sync", "port and ttl are at least 1"));
            }
            if s.refresh.is_some_and(|r| !(1..=3600).contains(&r)) {
                return Err(self.error("sync.refresh", "outside 1..=3600 seconds"));
            }
            if let Some(id) = s.director_id {
                if id == 0 {
                    return Err(self.error("sync.director_id", "1..=255 (0 means every id)"));
                }
                if s.instance.is_some()
                    || s.role
                        .is_some_and(|r| r != crate::config::ha::SyncRole::Both)
                    || s.syncid != 0
                {
                    return Err(self.error(
                        "sync.director_id",
                        "all-active directors send and receive at once, with the director id                          as sync id: leave out instance, role and syncid",
                    ));
                }
            }
        }
        Ok(())
    }

    /// The settings outside the service table: queues, polling, budgets, interfaces, timeouts.
    fn check_settings(&self) -> Result<(), ConfigError> {
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
        if let Some(m) = &c.metrics {
            if m.parse::<std::net::SocketAddr>().is_err() {
                return Err(self.error(
                    "metrics",
                    format!("'{m}' is not ADDRESS:PORT (e.g. 127.0.0.1:9477)"),
                ));
            }
        }
        if let Some(l) = &c.log_level {
            check_log_level(l).map_err(|m| self.error("log_level", m))?;
        }
        if let Some(n) = c.ring_size {
            super::check_ring_size(n).map_err(|m| self.error("ring_size", m))?;
        }
        if let Some(n) = c.umem_frames {
            super::check_umem_frames(n).map_err(|m| self.error("umem_frames", m))?;
        }
        if let Some(n) = c.conn_table_size.filter(|&n| n < 64) {
            return Err(self.error("conn_table_size", format!("{n} is below the minimum of 64")));
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
        for (f, v) in [
            ("tcp", c.timeouts.tcp),
            ("tcpfin", c.timeouts.tcpfin),
            ("udp", c.timeouts.udp),
        ] {
            if v == Some(0) {
                return Err(self.error(format!("timeouts.{f}"), "must be at least 1 second"));
            }
        }
        Ok(())
    }

    /// The file's timeouts and services as the changes that build them from an empty table,
    /// in the order they are written.
    pub fn changes(&self) -> Result<Vec<Sourced>, ConfigError> {
        let c = &self.config;
        let t = &c.timeouts;
        let mut out = vec![Sourced {
            change: Change::SetTimeouts {
                tcp: t.tcp.unwrap_or(0),
                tcpfin: t.tcpfin.unwrap_or(0),
                udp: t.udp.unwrap_or(0),
            },
            at: "timeouts".into(),
        }];
        for (i, s) in c.services.iter().enumerate() {
            let service = Key(self.key(i, s)?);
            out.push(Sourced {
                change: Change::AddService {
                    service,
                    spec: s.spec(),
                },
                at: format!("services[{i}]"),
            });
            let sorry = s
                .sorry_server
                .iter()
                .map(|r| (format!("services[{i}].sorry_server"), r));
            let reals = s
                .reals
                .iter()
                .enumerate()
                .map(|(j, r)| (format!("services[{i}].reals[{j}]"), r));
            for (at, r) in reals.clone().chain(sorry) {
                if let Some(name) = r.unknown.keys().next() {
                    return Err(
                        self.error(format!("{at}.{name}"), format!("unknown field `{name}`"))
                    );
                }
            }
            for (j, r) in s.reals.iter().enumerate() {
                out.push(Sourced {
                    change: Change::AddReal {
                        service,
                        real: r.spec.clone(),
                    },
                    at: format!("services[{i}].reals[{j}]"),
                });
            }
        }
        Ok(out)
    }

    /// The key of service `i`: `proto` + `vip` + `port`, or `fwmark` (+ `family`).
    fn key(&self, i: usize, s: &ServiceConfig) -> Result<ServiceKey, ConfigError> {
        let at = format!("services[{i}]");
        match (s.fwmark, s.proto, s.vip) {
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
                Ok(ServiceKey::Fwmark { mark, family })
            }
            (None, Some(proto), Some(vip)) => Ok(ServiceKey::Addr {
                proto: proto.into(),
                addr: vip,
                port: s.port.ok_or_else(|| {
                    self.error(format!("{at}.port"), "missing (use 0 for all ports)")
                })?,
            }),
            (Some(_), _, _) => {
                Err(self.error(&at, "give either fwmark, or proto and vip, not both"))
            }
            (None, None, _) => Err(self.error(format!("{at}.proto"), "missing (tcp, udp or sctp)")),
            (None, Some(_), None) => Err(self.error(format!("{at}.vip"), "missing")),
        }
    }

    /// Service `i`'s checks, inhibit and quorum, and its sorry server put into `t`.
    fn service_health(
        &self,
        i: usize,
        s: &ServiceConfig,
        key: &ServiceKey,
        t: &mut ServiceTable,
    ) -> Result<ServiceHealth, ConfigError> {
        let at = format!("services[{i}]");
        if let Some(c) = &s.check {
            c.validate()
                .map_err(|(f, m)| self.error(format!("{at}.check.{f}"), m))?;
        }
        let mut checks = Vec::new();
        for (j, r) in s.reals.iter().enumerate() {
            let (check, field) = match (&r.check, &s.check) {
                (Some(c), _) => (c, format!("{at}.reals[{j}].check")),
                (None, Some(c)) => (c, format!("{at}.check")),
                (None, None) => continue,
            };
            check
                .validate()
                .map_err(|(f, m)| self.error(format!("{field}.{f}"), m))?;
            // The port the real server got (DR and TUN take the virtual port).
            let port = change::apply::real_port(key, &r.spec)
                .filter(|&p| p != 0)
                .unwrap_or(key.port());
            checks.push(RealCheck {
                addr: r.spec.addr,
                port,
                check: check.clone(),
                notify_up: r.notify_up.clone().or_else(|| s.notify_up.clone()),
                notify_down: r.notify_down.clone().or_else(|| s.notify_down.clone()),
            });
        }
        if let Some(sr) = &s.sorry_server {
            if sr.check.is_some() {
                return Err(self.error(
                    format!("{at}.sorry_server.check"),
                    "the sorry server is not checked",
                ));
            }
            t.set_sorry(key, Some((sr.spec.addr, sr.spec.port, sr.spec.options())))
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
        Ok(ServiceHealth {
            inhibit_on_failure: s.inhibit_on_failure,
            quorum: s.quorum,
            checks,
        })
    }

    /// The firewall-mark rules.
    fn mark_rules(&self) -> Result<Vec<MarkRule>, ConfigError> {
        let mut rules = Vec::new();
        for (i, m) in self.config.marks.iter().enumerate() {
            let at = format!("marks[{i}]");
            let (dst, prefix_len) = parse_prefix(&m.dst).ok_or_else(|| {
                self.error(
                    format!("{at}.dst"),
                    format!("'{}' is not ADDRESS/PREFIX", m.dst),
                )
            })?;
            if xvs_core::service::is_v4_mapped(&dst) {
                return Err(self.error(
                    format!("{at}.dst"),
                    format!("{dst} is an IPv4-mapped IPv6 address: write it as IPv4"),
                ));
            }
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
        Ok(rules)
    }
}
