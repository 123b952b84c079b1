//! ipvsadm's command line, parsed with clap and checked the way ipvsadm checks it (one
//! command, the options each command needs and allows), into what xvsadm does.

use clap::{ArgAction, Args as ClapArgs, Parser, Subcommand};
use std::net::IpAddr;
use std::path::PathBuf;
use xvs_control::change::{
    Change, Key, MethodName, RealSpec, ServiceSpec, parse_addr_port, parse_fwmark,
};
use xvs_control::check::{CheckConfig, CheckKind, StartState};
use xvs_control::listing::{Columns, Format};
use xvs_control::proto::TraceQuery;
use xvs_core::service::{Family, Protocol, ServiceKey};

/// xvsadm: administer xvsd the way ipvsadm administers IPVS.
///
/// Commands (one per invocation), as ipvsadm:
///   -A|-E -t|-u|--sctp-service VIP:PORT | -f FWMARK [-s SCHED] [-p [TIMEOUT]] [-M NETMASK] [-b FLAGS] [-o]
///   -D -t|-u|--sctp-service VIP:PORT | -f FWMARK
///   -C
///   -a|-e -t|-u|--sctp-service VIP:PORT | -f FWMARK -r RIP[:PORT] [-g|-m|-i|--fullnat] [-w WEIGHT] [-x UPPER] [-y LOWER]
///   -d -t|-u|--sctp-service VIP:PORT | -f FWMARK -r RIP[:PORT]
///   -L|-l [SERVICE] [-n] [--stats|--rate|--thresholds|--persistent-conn] [--exact] [-c] [--timeout]
///   -Z [SERVICE]
///   --set TCP TCPFIN UDP
///   -R (rules on standard input)  -S [-n]
/// xvs's own: --reload [FILE], `xvsadm top`, `xvsadm trace`, `xvsadm health`, `xvsadm check`.
#[derive(Debug, Parser)]
#[command(name = "xvsadm", disable_version_flag = true, verbatim_doc_comment)]
pub struct Args {
    /// xvsd's control socket.
    #[arg(
        long,
        value_name = "PATH",
        env = "XVS_SOCKET",
        default_value = "/run/xvs/xvsd.sock",
        global = true
    )]
    pub socket: PathBuf,

    /// Add a virtual service.
    #[arg(short = 'A', long = "add-service", action = ArgAction::SetTrue)]
    pub add_service: bool,
    /// Edit a virtual service.
    #[arg(short = 'E', long = "edit-service", action = ArgAction::SetTrue)]
    pub edit_service: bool,
    /// Delete a virtual service.
    #[arg(short = 'D', long = "delete-service", action = ArgAction::SetTrue)]
    pub delete_service: bool,
    /// Clear the whole table.
    #[arg(short = 'C', long = "clear", action = ArgAction::SetTrue)]
    pub clear: bool,
    /// Restore rules from standard input.
    #[arg(short = 'R', long = "restore", action = ArgAction::SetTrue)]
    pub restore: bool,
    /// Save rules to standard output.
    #[arg(short = 'S', long = "save", action = ArgAction::SetTrue)]
    pub save: bool,
    /// Add a real server.
    #[arg(short = 'a', long = "add-server", action = ArgAction::SetTrue)]
    pub add_server: bool,
    /// Edit a real server.
    #[arg(short = 'e', long = "edit-server", action = ArgAction::SetTrue)]
    pub edit_server: bool,
    /// Delete a real server.
    #[arg(short = 'd', long = "delete-server", action = ArgAction::SetTrue)]
    pub delete_server: bool,
    /// List the table.
    #[arg(short = 'L', long = "list", action = ArgAction::SetTrue)]
    pub list: bool,
    /// List the table (same as -L).
    #[arg(short = 'l', action = ArgAction::SetTrue, hide = true)]
    pub list_l: bool,
    /// Zero counters of a service or all.
    #[arg(short = 'Z', long = "zero", action = ArgAction::SetTrue)]
    pub zero: bool,
    /// Set connection timeouts: TCP TCPFIN UDP (seconds; 0 leaves one unchanged).
    #[arg(long = "set", num_args = 1.., value_name = "SECONDS", allow_negative_numbers = true)]
    pub set: Option<Vec<String>>,
    /// Re-read xvsd's configuration file (or FILE) and apply the difference.
    #[arg(long, value_name = "FILE", num_args = 0..=1, default_missing_value = "")]
    pub reload: Option<String>,
    /// Show the version.
    #[arg(short = 'v', long = "version", action = ArgAction::SetTrue)]
    pub version: bool,

    /// The service.
    #[command(flatten)]
    pub svc: ServiceArg,
    /// Scheduler (rr, wrr, lc, wlc, lblc, lblcr, dh, sh, sed, nq, fo, ovf, mh, twos).
    #[arg(short = 's', long = "scheduler", value_name = "SCHED")]
    pub scheduler: Option<String>,
    /// Persistence, with an optional timeout (default 300 s).
    #[arg(short = 'p', long = "persistent", value_name = "TIMEOUT", num_args = 0..=1, default_missing_value = "300")]
    pub persistent: Option<String>,
    /// Persistence granularity: a netmask (IPv4) or prefix length.
    #[arg(short = 'M', long = "netmask", value_name = "NETMASK")]
    pub netmask: Option<String>,
    /// Scheduler flags: sh-fallback, sh-port, mh-fallback, mh-port (comma-separated).
    #[arg(short = 'b', long = "sched-flags", value_name = "FLAGS")]
    pub sched_flags: Option<String>,
    /// One-packet scheduling (UDP).
    #[arg(short = 'o', long = "ops", action = ArgAction::SetTrue)]
    pub ops: bool,
    /// FullNAT local addresses of the service (xvs; comma-separated).
    #[arg(long = "laddr", value_name = "ADDRS", value_delimiter = ',')]
    pub laddr: Vec<IpAddr>,

    /// Real server RIP[:PORT].
    #[arg(short = 'r', long = "real-server", value_name = "SERVER")]
    pub real: Option<String>,
    /// Direct routing (the default).
    #[arg(short = 'g', long = "gatewaying", action = ArgAction::SetTrue)]
    pub gatewaying: bool,
    /// IP-in-IP tunnelling.
    #[arg(short = 'i', long = "ipip", action = ArgAction::SetTrue)]
    pub ipip: bool,
    /// Masquerading (NAT).
    #[arg(short = 'm', long = "masquerading", action = ArgAction::SetTrue)]
    pub masquerading: bool,
    /// Full NAT: source and destination rewritten (xvs; the service needs --laddr).
    #[arg(long = "fullnat", action = ArgAction::SetTrue)]
    pub fullnat: bool,
    /// Weight (0-65535, default 1).
    #[arg(
        short = 'w',
        long = "weight",
        value_name = "WEIGHT",
        allow_negative_numbers = true
    )]
    pub weight: Option<String>,
    /// Upper connection threshold.
    #[arg(
        short = 'x',
        long = "u-threshold",
        value_name = "UTHRESHOLD",
        allow_negative_numbers = true
    )]
    pub u_threshold: Option<String>,
    /// Lower connection threshold.
    #[arg(
        short = 'y',
        long = "l-threshold",
        value_name = "LTHRESHOLD",
        allow_negative_numbers = true
    )]
    pub l_threshold: Option<String>,

    /// Numeric output (xvsadm always is).
    #[arg(short = 'n', long = "numeric", action = ArgAction::SetTrue)]
    pub numeric: bool,
    /// List connections.
    #[arg(short = 'c', long = "connection", action = ArgAction::SetTrue)]
    pub connection: bool,
    /// List timeouts.
    #[arg(long = "timeout", action = ArgAction::SetTrue)]
    pub timeout: bool,
    /// Totals.
    #[arg(long, action = ArgAction::SetTrue)]
    pub stats: bool,
    /// Rates.
    #[arg(long, action = ArgAction::SetTrue)]
    pub rate: bool,
    /// Thresholds.
    #[arg(long, action = ArgAction::SetTrue)]
    pub thresholds: bool,
    /// Persistent connections.
    #[arg(long = "persistent-conn", action = ArgAction::SetTrue)]
    pub persistent_conn: bool,
    /// Sort (the default; kept for compatibility).
    #[arg(long, action = ArgAction::SetTrue)]
    pub sort: bool,
    /// Do not sort.
    #[arg(long, action = ArgAction::SetTrue)]
    pub nosort: bool,
    /// Whole numbers in --stats and --rate.
    #[arg(short = 'X', long, action = ArgAction::SetTrue)]
    pub exact: bool,
    /// JSON instead of ipvsadm's layout (for -L).
    #[arg(long, action = ArgAction::SetTrue)]
    pub json: bool,

    /// xvs's own commands.
    #[command(subcommand)]
    pub sub: Option<Sub>,
}

/// A virtual service on the command line: -t|-u|--sctp-service VIP:PORT or -f FWMARK [-6].
#[derive(Debug, ClapArgs)]
pub struct ServiceArg {
    /// TCP service VIP[:PORT] (IPv6 as [ADDR]:PORT).
    #[arg(short = 't', long = "tcp-service", value_name = "SERVICE")]
    pub tcp: Option<String>,
    /// UDP service VIP[:PORT].
    #[arg(short = 'u', long = "udp-service", value_name = "SERVICE")]
    pub udp: Option<String>,
    /// SCTP service VIP[:PORT].
    #[arg(long = "sctp-service", value_name = "SERVICE")]
    pub sctp: Option<String>,
    /// Firewall-mark service.
    #[arg(short = 'f', long = "fwmark-service", value_name = "MARK")]
    pub fwmark: Option<String>,
    /// The firewall-mark service is IPv6.
    #[arg(short = '6', long = "ipv6", action = ArgAction::SetTrue)]
    pub ipv6: bool,
}

/// xvs's own commands.
#[derive(Debug, Subcommand)]
pub enum Sub {
    /// Live view of services and real servers: rates, connections, drops (q quits).
    Top {
        /// Print one screen to standard output and exit.
        #[arg(long)]
        once: bool,
        /// Refresh interval in milliseconds.
        #[arg(long, default_value_t = 1000)]
        interval_ms: u64,
    },
    /// Which service and real server a packet would go to, and why.
    Trace(TraceArgs),
    /// Health of every real server: check, state and for how long, last result and when,
    /// connections left.
    Health {
        /// JSON instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// Set (or with --none remove) the health check of one real server, until the next reload.
    Check(Box<CheckArgs>),
    /// Dataplane counters: polling per interface, steering and its drops, workers, the
    /// kernel's AF_XDP drop counters per socket, forwarder drops by reason.
    Stats {
        /// JSON instead of the tables.
        #[arg(long)]
        json: bool,
    },
}

/// `xvsadm check -t VIP:PORT -r RIP[:PORT] --type tcp|http|https|udp|misc [options]`.
#[derive(Debug, ClapArgs)]
pub struct CheckArgs {
    /// The service.
    #[command(flatten)]
    pub svc: ServiceArg,
    /// Real server RIP[:PORT].
    #[arg(short = 'r', long = "real-server", value_name = "SERVER")]
    pub real: String,
    /// Remove the check (the server counts as up).
    #[arg(long, conflicts_with = "kind")]
    pub none: bool,
    /// tcp, http, https, udp or misc.
    #[arg(long = "type", value_name = "TYPE", required_unless_present = "none")]
    pub kind: Option<CheckKind>,
    /// Port to probe (the real server's port by default).
    #[arg(long)]
    pub port: Option<u16>,
    /// HTTP(S): the path to GET.
    #[arg(long)]
    pub path: Option<String>,
    /// HTTP(S): acceptable status codes, comma-separated (default 200).
    #[arg(long, value_delimiter = ',')]
    pub status: Vec<u16>,
    /// HTTP(S): MD5 of the body, hex.
    #[arg(long)]
    pub digest: Option<String>,
    /// HTTP(S): a substring the body must contain; UDP: the response must contain it.
    #[arg(long)]
    pub expect: Option<String>,
    /// HTTP(S): the Host header.
    #[arg(long)]
    pub host: Option<String>,
    /// UDP: the request payload.
    #[arg(long)]
    pub send: Option<String>,
    /// MISC: the command (run with sh -c).
    #[arg(long)]
    pub command: Option<String>,
    /// Seconds between checks.
    #[arg(long, default_value_t = 2.0, allow_negative_numbers = true)]
    pub interval: f64,
    /// Seconds a check may take.
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    pub timeout: f64,
    /// Successes in a row to come back up.
    #[arg(long, default_value_t = 1)]
    pub rise: u32,
    /// Failures in a row to go down.
    #[arg(long, default_value_t = 1)]
    pub fall: u32,
    /// State before the first result: up or down.
    #[arg(long, default_value = "up")]
    pub start: StartState,
}

/// `xvsadm trace PROTO SRC:PORT DST:PORT`.
#[derive(Debug, ClapArgs)]
pub struct TraceArgs {
    /// tcp, udp or sctp.
    pub proto: String,
    /// Client address and port (IPv6 as [ADDR]:PORT).
    pub source: String,
    /// Destination address and port.
    pub destination: String,
    /// Interface the packet arrives on.
    #[arg(long = "interface", short = 'I')]
    pub interface: Option<String>,
    /// TCP flags of the packet (syn, ack, fin, rst, psh; comma-separated; default syn).
    #[arg(long, default_value = "syn")]
    pub flags: String,
}

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
    let (addr, port) = parse_addr_port(v)
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
        Family::V4 => "illegal virtual server address[:port] specified".to_string(),
        Family::V6 => "illegal ipv6 netmask specified".to_string(),
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
    let (addr, port) = parse_addr_port(r)
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
    })
}

fn reject(used: &[(bool, &str)], cmd: &str) -> Result<(), String> {
    match used.iter().find(|(on, _)| *on) {
        Some((_, name)) => Err(format!("Illegal '{name}' option with the '{cmd}' command")),
        None => Ok(()),
    }
}

impl Args {
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
            };
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

#[cfg(test)]
mod tests {
    use super::*;

    fn act(line: &str) -> Result<Action, String> {
        parse_line(&line.split_whitespace().collect::<Vec<_>>())
    }

    fn changes(line: &str) -> Vec<String> {
        match act(line) {
            Ok(Action::Apply(c)) => c.iter().map(ToString::to_string).collect(),
            other => panic!("{line}: {other:?}"),
        }
    }

    #[test]
    fn classic_lvs_lines_parse_to_themselves() {
        // What `-S` prints is what these lines mean.
        for (line, want) in [
            ("-A -t 198.18.0.10:80 -s wrr", "-A -t 198.18.0.10:80 -s wrr"),
            ("-A -t 198.18.0.10:80", "-A -t 198.18.0.10:80 -s wlc"),
            (
                "-a -t 198.18.0.10:80 -r 198.18.1.11:80 -m -w 1",
                "-a -t 198.18.0.10:80 -r 198.18.1.11:80 -m -w 1",
            ),
            (
                "-a -t 198.18.0.10:80 -r 198.18.0.11 -g -w 1",
                "-a -t 198.18.0.10:80 -r 198.18.0.11:80 -g -w 1",
            ),
            (
                "-a -t 198.18.0.10:80 -r 198.18.0.12 -i",
                "-a -t 198.18.0.10:80 -r 198.18.0.12:80 -i -w 1",
            ),
            (
                "-a -t 198.18.0.10:80 -r 198.18.0.12",
                "-a -t 198.18.0.10:80 -r 198.18.0.12:80 -g -w 1",
            ),
            (
                "--add-service --tcp-service 198.18.0.10:443 --scheduler rr --persistent",
                "-A -t 198.18.0.10:443 -s rr -p 300",
            ),
            (
                "-A -t 198.18.0.10:0 -s rr -p 600 -M 255.255.255.0",
                "-A -t 198.18.0.10:0 -s rr -p 600 -M 255.255.255.0",
            ),
            (
                "-A -u 198.18.0.10:53 -s sh -b sh-port,sh-fallback -o",
                "-A -u 198.18.0.10:53 -s sh -o -b sh-fallback,sh-port",
            ),
            ("-A -f 1 -s wlc -p", "-A -f 1 -s wlc -p 300"),
            ("-A -6 -f 2 -s rr", "-A -f 2 -6 -s rr"),
            (
                "-A -t [2001:db8::10]:80 -s rr -p 60 -M 64",
                "-A -t [2001:db8::10]:80 -s rr -p 60 -M 64",
            ),
            (
                "-a -t [2001:db8::10]:80 -r [2001:db8:1::11]:8080 -m -w 2 -x 100 -y 50",
                "-a -t [2001:db8::10]:80 -r [2001:db8:1::11]:8080 -m -w 2 -x 100 -y 50",
            ),
            (
                "-e -t 198.18.0.10:80 -r 198.18.1.11:80 -m -w 0",
                "-e -t 198.18.0.10:80 -r 198.18.1.11:80 -m -w 0",
            ),
            (
                "-d -t 198.18.0.10:80 -r 198.18.1.11:80",
                "-d -t 198.18.0.10:80 -r 198.18.1.11:80",
            ),
            ("-D -u 198.18.0.10:53", "-D -u 198.18.0.10:53"),
            (
                "-A --sctp-service 198.18.0.10:38412 -s mh -b mh-port",
                "-A --sctp-service 198.18.0.10:38412 -s mh -b mh-port",
            ),
            (
                "-A -t 198.18.0.10:80 -s rr --laddr 198.18.1.100,198.18.1.101",
                "-A -t 198.18.0.10:80 -s rr --laddr 198.18.1.100,198.18.1.101",
            ),
            (
                "-a -t 198.18.0.10:80 -r 198.18.1.11:8080 --fullnat -w 3",
                "-a -t 198.18.0.10:80 -r 198.18.1.11:8080 --fullnat -w 3",
            ),
            ("-C", "-C"),
            ("--set 900 120 300", "--set 900 120 300"),
        ] {
            assert_eq!(changes(line), [want], "{line}");
        }
    }

    #[test]
    fn listing_forms() {
        let l = |s: &str| act(s).unwrap();
        assert!(matches!(
            l("-Ln"),
            Action::List {
                format: Format {
                    columns: Columns::Default,
                    ..
                },
                only: None,
                json: false
            }
        ));
        assert!(matches!(
            l("-L -n --stats --exact"),
            Action::List {
                format: Format {
                    columns: Columns::Stats,
                    exact: true,
                    ..
                },
                ..
            }
        ));
        assert!(matches!(
            l("-Ln --rate"),
            Action::List {
                format: Format {
                    columns: Columns::Rate,
                    ..
                },
                ..
            }
        ));
        assert!(matches!(
            l("-l --thresholds"),
            Action::List {
                format: Format {
                    columns: Columns::Thresholds,
                    ..
                },
                ..
            }
        ));
        assert!(matches!(l("-Lnc"), Action::Conns { persistent: false }));
        assert!(matches!(
            l("-lcn --persistent-conn"),
            Action::Conns { persistent: true }
        ));
        assert!(matches!(l("-L --timeout"), Action::Timeouts));
        assert!(matches!(
            l("-Ln -t 198.18.0.10:80"),
            Action::List { only: Some(_), .. }
        ));
        assert!(
            matches!(l(""), Action::List { .. }),
            "no command lists, as ipvsadm"
        );
        assert!(matches!(l("-Z -u 198.18.0.10:53"), Action::Zero(Some(_))));
        assert!(matches!(l("-Sn"), Action::Save));
        assert!(matches!(l("-R"), Action::Restore));
        assert!(matches!(l("--reload"), Action::Reload(None)));
        assert!(matches!(
            l("--reload /etc/xvs/xvs.yaml"),
            Action::Reload(Some(_))
        ));
        assert!(matches!(
            l("trace tcp 198.18.0.100:40000 198.18.0.10:80 --flags ack"),
            Action::Trace(TraceQuery {
                tcp_flags: Some(0x10),
                ..
            })
        ));
        assert!(matches!(l("-v"), Action::Version));
    }

    #[test]
    fn errors_in_ipvsadm_words() {
        for (line, want) in [
            ("-A -a -t 198.18.0.10:80", "multiple commands specified"),
            (
                "-A -s rr",
                "You need to supply the 'service-address' option for the 'add-service' command",
            ),
            (
                "-a -t 198.18.0.10:80",
                "You need to supply the 'real-server' option for the 'add-server' command",
            ),
            (
                "-a -t 198.18.0.10:80 -r 198.18.0.11 -s rr",
                "Illegal 'scheduler' option with the 'add-server' command",
            ),
            (
                "-A -t 198.18.0.10:80 -w 3",
                "Illegal 'weight' option with the 'add-service' command",
            ),
            (
                "-A -t 198.18.0.10:http",
                "illegal virtual server address[:port] specified",
            ),
            (
                "-A -t 198.18.0.10:80 -p abc",
                "invalid timeout value `abc' specified",
            ),
            (
                "-a -t 198.18.0.10:80 -r 198.18.0.11 -w 70000",
                "illegal weight specified",
            ),
            (
                "-a -t 198.18.0.10:80 -r 198.18.0.11 -w -1",
                "illegal weight specified",
            ),
            (
                "-A -t 198.18.0.10:80 -o",
                "One-Packet Scheduling is only for UDP virtual services",
            ),
            (
                "-A -t 198.18.0.10:80 -t 198.18.0.10:81",
                "the argument '--tcp-service <SERVICE>' cannot be used multiple times",
            ),
            (
                "-A -t 198.18.0.10:80 -u 198.18.0.10:80",
                "The option '-u' conflicts with the '-t' option in the 'add-service' command",
            ),
            ("--set 1 2", "--set option requires 3 timeout values"),
            (
                "-a -t 198.18.0.10:80 -r 2001:db8::1 -g",
                "Different address family is allowed only for tunneling servers",
            ),
            (
                "-Ln --stats --rate",
                "options conflicts in the list command",
            ),
            ("-Lc --stats", "options conflicts in the list command"),
            ("-A -f 0", "invalid fwmark value `0' specified"),
            (
                "-A -t 198.18.0.10:80 -b sh-sideways",
                "invalid scheduler flag `sh-sideways'",
            ),
            (
                "-A -t 198.18.0.10:80 -p 60 -M 255.0.255.0",
                "255.0.255.0 is not a contiguous netmask",
            ),
        ] {
            assert_eq!(act(line).unwrap_err(), want, "{line}");
        }
    }

    #[test]
    fn restore_reads_save_output_and_names_bad_lines() {
        let text = "# saved\n-A -t 198.18.0.10:80 -s wrr\n\n-a -t 198.18.0.10:80 -r 198.18.0.11:80 -g -w 1\n";
        assert_eq!(restore_lines(text).unwrap().len(), 2);
        let e =
            restore_lines("-A -t 198.18.0.10:80 -s wrr\n-a -t 198.18.0.10:80 -w 1\n").unwrap_err();
        assert_eq!(
            e,
            "line 2: You need to supply the 'real-server' option for the 'add-server' command: -a -t 198.18.0.10:80 -w 1"
        );
        assert!(
            restore_lines("-Ln\n")
                .unwrap_err()
                .starts_with("line 1: only rule commands")
        );
    }

    #[test]
    fn check_command_builds_a_validated_check() {
        match act(
            "check -t 198.18.0.10:80 -r 198.18.1.11 --type HTTP --path /health --status 200,204 --interval 0.5 --fall 3",
        ) {
            Ok(Action::SetCheck {
                service,
                addr,
                port,
                check: Some(c),
            }) => {
                assert_eq!(service.0.to_string(), "TCP 198.18.0.10:80");
                assert_eq!(addr.to_string(), "198.18.1.11");
                assert_eq!(port, None);
                assert_eq!(c.kind, CheckKind::Http);
                assert_eq!(c.status, vec![200, 204]);
                assert_eq!((c.interval, c.fall, c.rise), (0.5, 3, 1));
            }
            other => panic!("{other:?}"),
        }
        match act("check -u 198.18.0.10:53 -r 198.18.1.11:5353 --none") {
            Ok(Action::SetCheck {
                port, check: None, ..
            }) => assert_eq!(port, Some(5353)),
            other => panic!("{other:?}"),
        }
        assert_eq!(act("health"), Ok(Action::Health { json: false }));
        assert_eq!(act("stats --json"), Ok(Action::Stats { json: true }));
    }

    #[test]
    fn bad_checks_are_refused_with_the_option_named() {
        for (line, want) in [
            (
                "check -t 198.18.0.10:80 -r 198.18.1.11 --type tcp --interval -1",
                "--interval: -1 is not a positive",
            ),
            (
                "check -t 198.18.0.10:80 -r 198.18.1.11 --type http",
                "--path: missing",
            ),
            (
                "check -t 198.18.0.10:80 -r 198.18.1.11 --type misc",
                "--command: missing",
            ),
            (
                "check -t 198.18.0.10:80 -r 198.18.1.11 --type ping",
                "unknown checker 'ping'",
            ),
            (
                "check -r 198.18.1.11 --type tcp",
                "You need to supply the 'service-address' option",
            ),
            (
                "check -t 198.18.0.10:80 -r 198.18.1.11 --type tcp --none",
                "cannot be used with",
            ),
            (
                "check -t 198.18.0.10:80 -r 198.18.1.11",
                "required arguments were not provided",
            ),
        ] {
            let e = act(line).unwrap_err();
            assert!(e.contains(want), "{line}: {e}");
        }
    }
}
