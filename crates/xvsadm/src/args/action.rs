//! From the parsed command line to what xvsadm does: one command, the options it needs and
//! allows, checked and worded as ipvsadm does.

use super::{Args, CheckArgs, ServiceArg, Sub, TraceArgs};
use clap::Parser;
use std::net::IpAddr;
use xvs_control::change::{
    Change, Key, MethodName, RealSpec, ServiceSpec, TunCsumName, TunTypeName, TunnelSpec,
    parse_addr_port, parse_fwmark,
};
use xvs_control::check::CheckConfig;
use xvs_control::listing::{Columns, Format};
use xvs_control::proto::{DaemonSpec, TraceQuery};
use xvs_core::service::{Family, Protocol, ServiceKey};

/// What to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Send changes (one, or the lines of -R).
    Apply(Vec<Change>),
    /// Read rules from standard input, then apply them as one batch.
    Restore,
    /// List.
    List {
        /// Layout.
        format: Format,
        /// One service only.
        only: Option<Key>,
        /// JSON.
        json: bool,
    },
    /// List connections.
    Conns {
        /// With the persistence-engine columns.
        persistent: bool,
    },
    /// List timeouts.
    Timeouts,
    /// Zero counters.
    Zero(Option<Key>),
    /// Print the rules.
    Save,
    /// Reload the configuration file.
    Reload(Option<String>),
    /// Print the version.
    Version,
    /// Live view.
    Top {
        /// One screen and exit.
        once: bool,
        /// Refresh interval.
        interval_ms: u64,
    },
    /// Trace a packet.
    Trace(TraceQuery),
    /// Show health.
    Health {
        /// JSON.
        json: bool,
    },
    /// Show the dataplane counters.
    Stats {
        /// JSON.
        json: bool,
    },
    /// Show the VRRP instances.
    Vrrp {
        /// JSON.
        json: bool,
    },
    /// Print a keepalived.conf as xvs YAML.
    ConvertKeepalived(std::path::PathBuf),
    /// Start a sync daemon.
    StartDaemon(DaemonSpec),
    /// Stop a sync daemon (`master` or `backup`).
    StopDaemon(String),
    /// List the sync daemons (`-L --daemon`).
    Daemons,
    /// Set or remove one real server's check.
    SetCheck {
        /// The service.
        service: Key,
        /// Real server address.
        addr: IpAddr,
        /// Real server port.
        port: Option<u16>,
        /// The check; `None` removes it.
        check: Option<CheckConfig>,
    },
}

const CMDS: [&str; 13] = [
    "add-service",
    "edit-service",
    "delete-service",
    "flush",
    "list",
    "add-server",
    "delete-server",
    "edit-server",
    "set",
    "restore",
    "save",
    "zero",
    "reload",
];

fn service(a: &ServiceArg, cmd: &str, required: bool) -> Result<Option<Key>, String> {
    let given: Vec<(&str, &String)> = [
        ("-t", &a.tcp),
        ("-u", &a.udp),
        ("--sctp-service", &a.sctp),
        ("-f", &a.fwmark),
    ]
    .into_iter()
    .filter_map(|(n, v)| v.as_ref().map(|v| (n, v)))
    .collect();
    if given.len() > 1 {
        return Err(format!(
            "The option '{}' conflicts with the '{}' option in the '{cmd}' command",
            given[1].0, given[0].0
        ));
    }
    let Some((sw, v)) = given.first() else {
        if a.ipv6 {
            return Err("-6 used before -f".into());
        }
        return if required {
            Err(format!(
                "You need to supply the 'service-address' option for the '{cmd}' command"
            ))
        } else {
            Ok(None)
        };
    };
    if *sw == "-f" {
        let mark = parse_fwmark(v)?;
        let family = if a.ipv6 { Family::V6 } else { Family::V4 };
        return Ok(Some(Key(ServiceKey::Fwmark { mark, family })));
    }
    if a.ipv6 {
        return Err("-6 used before -f".into());
    }
    let proto = match *sw {
        "-t" => Protocol::Tcp,
        "-u" => Protocol::Udp,
        _ => Protocol::Sctp,
    };
    let (addr, port) = super::names::addr_port(v, proto == Protocol::Udp)
        .ok_or_else(|| "illegal virtual server address[:port] specified".to_string())?;
    Ok(Some(Key(ServiceKey::Addr {
        proto,
        addr,
        port: port.unwrap_or(0),
    })))
}

fn num(v: &Option<String>, what: &str, max: u64) -> Result<Option<u32>, String> {
    match v {
        None => Ok(None),
        Some(s) => match s.parse::<u64>() {
            Ok(n) if n <= max => Ok(Some(n as u32)),
            _ => Err(format!("illegal {what} specified")),
        },
    }
}

fn netmask(s: &str, family: Family) -> Result<u8, String> {
    let bad = || match family {
        Family::V4 => format!(
            "illegal netmask '{s}' (a prefix length 0-32 or a dotted mask such as 255.255.255.0)"
        ),
        Family::V6 => format!("illegal ipv6 netmask '{s}' (a prefix length 0-128)"),
    };
    if let Ok(n) = s.parse::<u8>() {
        let max = if family == Family::V4 { 32 } else { 128 };
        return if n <= max { Ok(n) } else { Err(bad()) };
    }
    if family == Family::V6 {
        return Err(bad());
    }
    let m: std::net::Ipv4Addr = s.parse().map_err(|_| bad())?;
    let bits = u32::from(m);
    if bits.leading_ones() + bits.trailing_zeros() != 32 && bits != 0 {
        return Err(format!("{s} is not a contiguous netmask"));
    }
    Ok(bits.leading_ones() as u8)
}

fn service_spec(a: &Args, key: &Key) -> Result<ServiceSpec, String> {
    let persistent = match &a.persistent {
        None => None,
        Some(t) => match t.parse::<u32>() {
            Ok(n) if n > 0 => Some(n),
            _ => return Err(format!("invalid timeout value `{t}' specified")),
        },
    };
    let netmask = a
        .netmask
        .as_deref()
        .map(|m| netmask(m, key.0.family()))
        .transpose()?;
    if a.ops
        && !matches!(
            key.0,
            ServiceKey::Addr {
                proto: Protocol::Udp,
                ..
            } | ServiceKey::Fwmark { .. }
        )
    {
        return Err("One-Packet Scheduling is only for UDP virtual services".into());
    }
    let given = a.sched_flags.clone().unwrap_or_default();
    let flags = xvs_core::service::SchedFlags::parse(&given)
        .map_err(|_| format!("invalid scheduler flag `{given}'"))?
        .to_string();
    Ok(ServiceSpec {
        scheduler: a.scheduler.clone().unwrap_or_else(|| "wlc".into()),
        flags,
        persistent,
        netmask,
        one_packet: a.ops,
        local_addrs: a.laddr.clone(),
    })
}

fn real_spec(a: &Args, key: &Key, with_options: bool) -> Result<RealSpec, String> {
    let r = a
        .real
        .as_deref()
        .ok_or("You need to supply the 'real-server' option for this command")?;
    let udp = matches!(
        key.0,
        ServiceKey::Addr {
            proto: Protocol::Udp,
            ..
        }
    );
    let (addr, port) = super::names::addr_port(r, udp)
        .ok_or_else(|| "illegal real server address[:port] specified".to_string())?;
    let methods: Vec<MethodName> = [
        (a.gatewaying, MethodName::Dr),
        (a.masquerading, MethodName::Nat),
        (a.ipip, MethodName::Tun),
        (a.fullnat, MethodName::Fullnat),
    ]
    .into_iter()
    .filter_map(|(on, m)| on.then_some(m))
    .collect();
    if methods.len() > 1 {
        return Err("The option 'forwarding-method' is given more than once".into());
    }
    if !with_options
        && (!methods.is_empty()
            || a.weight.is_some()
            || a.u_threshold.is_some()
            || a.l_threshold.is_some())
    {
        return Err(
            "Illegal 'weight' or 'forwarding-method' option with the 'delete-server' command"
                .into(),
        );
    }
    let method = methods.first().copied().unwrap_or_default();
    if Family::of(&addr) != key.0.family() && method != MethodName::Tun {
        return Err("Different address family is allowed only for tunneling servers".into());
    }
    Ok(RealSpec {
        addr,
        port,
        method,
        weight: num(&a.weight, "weight", 65535)?.unwrap_or(1),
        u_threshold: num(&a.u_threshold, "u_threshold", u64::from(u32::MAX))?.unwrap_or(0),
        l_threshold: num(&a.l_threshold, "l_threshold", u64::from(u32::MAX))?.unwrap_or(0),
        tunnel: tunnel_spec(a, method)?,
    })
}

/// `--tun-type`, `--tun-port` and `--tun-*csum`, checked against the method as ipvsadm does.
fn tunnel_spec(a: &Args, method: MethodName) -> Result<TunnelSpec, String> {
    let tun_type = match a.tun_type.as_deref() {
        None => None,
        Some("ipip") => Some(TunTypeName::Ipip),
        Some("gue") => Some(TunTypeName::Gue),
        Some("gre") => Some(TunTypeName::Gre),
        Some(t) => return Err(format!("illegal tunnel type specified: {t}")),
    };
    let tun_port = match &a.tun_port {
        None => None,
        Some(p) => Some(
            p.parse::<u16>()
                .ok()
                .filter(|&p| p != 0)
                .ok_or_else(|| format!("illegal tunnel port specified: {p}"))?,
        ),
    };
    let tun_csum = if a.tun_csum {
        Some(TunCsumName::Csum)
    } else if a.tun_remcsum {
        Some(TunCsumName::Remcsum)
    } else if a.tun_nocsum {
        Some(TunCsumName::Nocsum)
    } else {
        None
    };
    let spec = TunnelSpec {
        tun_type,
        tun_port,
        tun_csum,
    };
    spec.tunnel(method)?;
    Ok(spec)
}

fn reject(used: &[(bool, &str)], cmd: &str) -> Result<(), String> {
    match used.iter().find(|(on, _)| *on) {
        Some((_, name)) => Err(format!("Illegal '{name}' option with the '{cmd}' command")),
        None => Ok(()),
    }
}

impl Args {
    /// `--start-daemon`, `--stop-daemon` and `-L --daemon`, with ipvsadm's checks and words.
    fn daemon_action(&self) -> Result<Option<Action>, String> {
        let opts = [
            (self.mcast_interface.is_some(), "mcast-interface"),
            (self.sync_maxlen.is_some(), "sync-maxlen"),
            (self.mcast_group.is_some(), "mcast-group"),
            (self.mcast_port.is_some(), "mcast-port"),
            (self.mcast_ttl.is_some(), "mcast-ttl"),
        ];
        let role = |s: &str, what: &str| match s {
            "master" | "backup" => Ok(s.to_string()),
            _ => Err(format!("illegal {what} parameter specified")),
        };
        let num = |v: &Option<String>, lo: u64, hi: u64, what: &str| -> Result<u64, String> {
            match v {
                None => Ok(0),
                Some(s) => s
                    .parse::<u64>()
                    .ok()
                    .filter(|n| (lo..=hi).contains(n))
                    .ok_or_else(|| format!("illegal {what} specified")),
            }
        };
        if let Some(r) = &self.start_daemon {
            let role = role(r, "start-daemon")?;
            let group = match &self.mcast_group {
                None => None,
                Some(g) => {
                    let a: IpAddr = g.parse().map_err(|_| {
                        if g.contains(':') {
                            format!("invalid IPv6 mcast-group `{g}'")
                        } else {
                            format!("invalid IPv4 mcast-group `{g}'")
                        }
                    })?;
                    if !a.is_multicast() {
                        return Err(if a.is_ipv6() {
                            format!("invalid IPv6 mcast-group `{g}'")
                        } else {
                            format!("invalid IPv4 mcast-group `{g}'")
                        });
                    }
                    Some(a)
                }
            };
            return Ok(Some(Action::StartDaemon(DaemonSpec {
                role,
                interface: self
                    .mcast_interface
                    .clone()
                    .unwrap_or_else(|| "eth0".into()),
                syncid: num(&self.syncid, 0, 255, "syncid")? as u8,
                maxlen: num(&self.sync_maxlen, 1, 65507, "sync-maxlen")? as u16,
                group,
                port: num(&self.mcast_port, 1, 65535, "mcast-port")? as u16,
                ttl: num(&self.mcast_ttl, 1, 255, "mcast-ttl")? as u8,
            })));
        }
        if let Some(r) = &self.stop_daemon {
            reject(&opts, "stop-daemon")?;
            return Ok(Some(Action::StopDaemon(role(r, "stop_daemon")?)));
        }
        if self.daemon {
            if !(self.list || self.list_l) {
                return Err("--daemon goes with -L".into());
            }
            reject(&self.list_opts(), "list")?;
            return Ok(Some(Action::Daemons));
        }
        reject(&opts, "this")?;
        if self.syncid.is_some() {
            return Err("Illegal 'syncid' option with this command".into());
        }
        Ok(None)
    }

    fn service_opts(&self) -> [(bool, &'static str); 6] {
        [
            (self.scheduler.is_some(), "scheduler"),
            (self.persistent.is_some(), "persistent"),
            (self.netmask.is_some(), "netmask"),
            (self.sched_flags.is_some(), "sched-flags"),
            (self.ops, "ops"),
            (!self.laddr.is_empty(), "laddr"),
        ]
    }

    fn real_opts(&self) -> [(bool, &'static str); 5] {
        [
            (self.real.is_some(), "real-server"),
            (
                self.gatewaying || self.masquerading || self.ipip || self.fullnat,
                "forwarding-method",
            ),
            (self.weight.is_some(), "weight"),
            (self.u_threshold.is_some(), "u-threshold"),
            (self.l_threshold.is_some(), "l-threshold"),
        ]
    }

    fn list_opts(&self) -> [(bool, &'static str); 8] {
        [
            (self.connection, "connection"),
            (self.timeout, "timeout"),
            (self.stats, "stats"),
            (self.rate, "rate"),
            (self.thresholds, "thresholds"),
            (self.persistent_conn, "persistent-conn"),
            (self.exact, "exact"),
            (self.json, "json"),
        ]
    }

    /// What the command line asks for, or what is wrong with it (in ipvsadm's words where
    /// ipvsadm has them).
    pub fn action(&self) -> Result<Action, String> {
        if let Some(sub) = &self.sub {
            return match sub {
                Sub::Top { once, interval_ms } => Ok(Action::Top {
                    once: *once,
                    interval_ms: (*interval_ms).max(100),
                }),
                Sub::Trace(t) => trace_query(t).map(Action::Trace),
                Sub::Health { json } => Ok(Action::Health { json: *json }),
                Sub::Stats { json } => Ok(Action::Stats { json: *json }),
                Sub::Check(c) => set_check(c),
                Sub::Vrrp { json } => Ok(Action::Vrrp { json: *json }),
                Sub::ConvertKeepalived { file } => Ok(Action::ConvertKeepalived(file.clone())),
            };
        }
        if let Some(a) = self.daemon_action()? {
            return Ok(a);
        }
        let cmds = [
            self.add_service,
            self.edit_service,
            self.delete_service,
            self.clear,
            self.list || self.list_l,
            self.add_server,
            self.delete_server,
            self.edit_server,
            self.set.is_some(),
            self.restore,
            self.save,
            self.zero,
            self.reload.is_some(),
        ];
        let n = cmds.iter().filter(|c| **c).count() + usize::from(self.version);
        if n > 1 {
            return Err("multiple commands specified".into());
        }
        if self.version {
            return Ok(Action::Version);
        }
        // Like ipvsadm, no command lists.
        let cmd = cmds.iter().position(|c| *c).map_or("list", |i| CMDS[i]);
        match cmd {
            "add-service" | "edit-service" => {
                reject(&self.real_opts(), cmd)?;
                reject(&self.list_opts(), cmd)?;
                let key = service(&self.svc, cmd, true)?.ok_or("no service")?;
                let spec = service_spec(self, &key)?;
                Ok(Action::Apply(vec![if cmd == "add-service" {
                    Change::AddService { service: key, spec }
                } else {
                    Change::EditService { service: key, spec }
                }]))
            }
            "delete-service" => {
                reject(&self.service_opts(), cmd)?;
                reject(&self.real_opts(), cmd)?;
                let key = service(&self.svc, cmd, true)?.ok_or("no service")?;
                Ok(Action::Apply(vec![Change::DeleteService { service: key }]))
            }
            "add-server" | "edit-server" | "delete-server" => {
                reject(&self.service_opts(), cmd)?;
                reject(&self.list_opts(), cmd)?;
                let key = service(&self.svc, cmd, true)?.ok_or("no service")?;
                if self.real.is_none() {
                    return Err(format!(
                        "You need to supply the 'real-server' option for the '{cmd}' command"
                    ));
                }
                let real = real_spec(self, &key, cmd != "delete-server")?;
                Ok(Action::Apply(vec![match cmd {
                    "add-server" => Change::AddReal { service: key, real },
                    "edit-server" => Change::EditReal { service: key, real },
                    _ => Change::DeleteReal {
                        service: key,
                        addr: real.addr,
                        port: real.port,
                    },
                }]))
            }
            "flush" | "restore" | "save" | "set" | "reload" => {
                reject(&self.service_opts(), cmd)?;
                reject(&self.real_opts(), cmd)?;
                if service(&self.svc, cmd, false)?.is_some() {
                    return Err(format!(
                        "Illegal 'service-address' option with the '{cmd}' command"
                    ));
                }
                match cmd {
                    "flush" => Ok(Action::Apply(vec![Change::Clear])),
                    "restore" => Ok(Action::Restore),
                    "save" => Ok(Action::Save),
                    "reload" => Ok(Action::Reload(
                        self.reload.clone().filter(|s| !s.is_empty()),
                    )),
                    _ => {
                        let v = self.set.as_deref().unwrap_or_default();
                        if v.len() != 3 {
                            return Err("--set option requires 3 timeout values".into());
                        }
                        let mut t = [0u32; 3];
                        for (slot, s) in t.iter_mut().zip(v) {
                            *slot = s
                                .parse()
                                .map_err(|_| format!("invalid timeout value `{s}' specified"))?;
                        }
                        Ok(Action::Apply(vec![Change::SetTimeouts {
                            tcp: t[0],
                            tcpfin: t[1],
                            udp: t[2],
                        }]))
                    }
                }
            }
            "zero" => {
                reject(&self.service_opts(), cmd)?;
                reject(&self.real_opts(), cmd)?;
                Ok(Action::Zero(service(&self.svc, cmd, false)?))
            }
            _ => {
                reject(&self.service_opts(), "list")?;
                reject(&self.real_opts(), "list")?;
                let views = [self.stats, self.rate, self.thresholds, self.persistent_conn];
                if (self.connection || self.timeout) && (self.stats || self.rate || self.thresholds)
                    || self.timeout && self.persistent_conn
                    || views.iter().filter(|v| **v).count() > 1
                    || self.connection && self.timeout
                {
                    return Err("options conflicts in the list command".into());
                }
                let only = service(&self.svc, "list", false)?;
                if self.connection {
                    return Ok(Action::Conns {
                        persistent: self.persistent_conn,
                    });
                }
                if self.timeout {
                    return Ok(Action::Timeouts);
                }
                let columns = if self.stats {
                    Columns::Stats
                } else if self.rate {
                    Columns::Rate
                } else if self.thresholds {
                    Columns::Thresholds
                } else if self.persistent_conn {
                    Columns::PersistentConn
                } else {
                    Columns::Default
                };
                Ok(Action::List {
                    format: Format {
                        columns,
                        exact: self.exact,
                        nosort: self.nosort,
                        names: None,
                    },
                    only,
                    json: self.json,
                })
            }
        }
    }
}

fn trace_query(t: &TraceArgs) -> Result<TraceQuery, String> {
    let end = |s: &str| -> Result<(IpAddr, u16), String> {
        match parse_addr_port(s) {
            Some((a, Some(p))) => Ok((a, p)),
            _ => Err(format!("'{s}' is not ADDR:PORT (IPv6 as [ADDR]:PORT)")),
        }
    };
    let (src, sport) = end(&t.source)?;
    let (dst, dport) = end(&t.destination)?;
    let mut flags = 0u8;
    for f in t.flags.split(',').map(str::trim).filter(|f| !f.is_empty()) {
        flags |= match f.to_ascii_lowercase().as_str() {
            "fin" => 0x01,
            "syn" => 0x02,
            "rst" => 0x04,
            "psh" => 0x08,
            "ack" => 0x10,
            other => {
                return Err(format!(
                    "unknown TCP flag '{other}' (syn, ack, fin, rst, psh)"
                ));
            }
        };
    }
    Ok(TraceQuery {
        proto: t.proto.clone(),
        src,
        sport,
        dst,
        dport,
        interface: t.interface.clone(),
        tcp_flags: Some(flags),
    })
}

fn set_check(c: &CheckArgs) -> Result<Action, String> {
    let service = service(&c.svc, "check", true)?.ok_or("no service")?;
    let (addr, port) = parse_addr_port(&c.real)
        .ok_or_else(|| "illegal real server address[:port] specified".to_string())?;
    let check = match c.kind {
        None => None,
        Some(kind) => {
            let check = CheckConfig {
                kind,
                port: c.port,
                path: c.path.clone(),
                status: c.status.clone(),
                digest: c.digest.clone(),
                expect: c.expect.clone(),
                host: c.host.clone(),
                send: c.send.clone(),
                command: c.command.clone(),
                interval: c.interval,
                timeout: c.timeout,
                retry_interval: None,
                rise: c.rise,
                fall: c.fall,
                start: c.start,
            };
            check
                .validate()
                .map_err(|(field, msg)| format!("--{field}: {msg}"))?;
            Some(check)
        }
    };
    Ok(Action::SetCheck {
        service,
        addr,
        port,
        check,
    })
}

/// Parses one command line (without the program name), as `-R` does for every line.
pub fn parse_line(words: &[&str]) -> Result<Action, String> {
    if let Some(e) = super::unsupported(words) {
        return Err(e);
    }
    let argv = std::iter::once("xvsadm").chain(words.iter().copied());
    let a = Args::try_parse_from(argv).map_err(|e| first_line(&e.to_string()))?;
    a.action()
}

fn first_line(s: &str) -> String {
    s.lines()
        .next()
        .unwrap_or("")
        .trim_start_matches("error: ")
        .to_string()
}

/// The changes in `-R` input: one rule per line; blank lines and `#` comments are skipped.
/// Errors name the line.
pub fn restore_lines(text: &str) -> Result<Vec<Change>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let words: Vec<&str> = l.split_whitespace().collect();
        match parse_line(&words) {
            Ok(Action::Apply(c)) => out.extend(c),
            Ok(_) => {
                return Err(format!(
                    "line {}: only rule commands (-A -E -D -a -e -d -C --set) can be restored: {l}",
                    i + 1
                ));
            }
            Err(e) => return Err(format!("line {}: {e}: {l}", i + 1)),
        }
    }
    Ok(out)
}
