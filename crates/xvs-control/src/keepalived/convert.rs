//! What xvs makes of a keepalived.conf: the same [`Config`] a YAML file gives. Keywords and
//! defaults follow keepalived 2.2.7 (check_parser.c, vrrp_parser.c, global_parser.c): a
//! virtual server without `protocol` is UDP, without `lb_algo` wlc, without `lb_kind` NAT
//! (each with keepalived's warning); a checker's failure takes a server down after `retry` + 1
//! failures spaced `delay_before_retry`, and one success brings it back. Every keyword xvs does
//! not implement is a warning naming its file, line and keyword; a malformed one is an error
//! with its place, and nothing of the file is used.

use super::tree::{At, Node, Warning};
use crate::ConfigError;
use crate::change::{MethodName, RealSpec, TunCsumName, TunTypeName, TunnelSpec};
use crate::check::{CheckConfig, CheckKind, StartState};
use crate::config::ha::{
    AuthConfig, InitialState, SyncConfig, SyncGroupConfig, TrackConfig, VipConfig,
    VrrpInstanceConfig, VrrpScriptConfig,
};
use crate::config::{Config, PersistenceConfig, ProtoConfig, RealConfig, ServiceConfig};
use std::collections::HashMap;
use std::net::IpAddr;

/// The converted configuration, where each of its parts came from, and the warnings.
#[derive(Debug, Default)]
pub struct Converted {
    /// The configuration.
    pub config: Config,
    /// Field path (`services[2].reals[0]`) → the place in the keepalived files.
    pub origins: HashMap<String, At>,
    /// Keywords not implemented, and other things keepalived would have said.
    pub warnings: Vec<Warning>,
}

type R<T> = Result<T, ConfigError>;

struct Cx {
    out: Converted,
}

impl Cx {
    fn warn(&mut self, at: &At, msg: impl Into<String>) {
        self.out.warnings.push((at.clone(), msg.into()));
    }

    fn unsupported(&mut self, n: &Node, what: &str) {
        self.warn(
            &n.at,
            format!("'{}' {what} is not implemented by xvs; ignored", n.keyword),
        );
    }

    fn origin(&mut self, path: String, at: &At) {
        self.out.origins.insert(path, at.clone());
    }
}

fn arg<'a>(n: &'a Node, i: usize, what: &str) -> R<&'a str> {
    n.args
        .get(i)
        .map(String::as_str)
        .ok_or_else(|| n.at.error(format!("'{}' needs {what}", n.keyword)))
}

fn num<T: std::str::FromStr>(n: &Node, i: usize, what: &str) -> R<T> {
    let s = arg(n, i, what)?;
    s.parse()
        .map_err(|_| n.at.error(format!("'{}': '{s}' is not {what}", n.keyword)))
}

fn secs(n: &Node) -> R<f64> {
    let v: f64 = num(n, 0, "a number of seconds")?;
    if !v.is_finite() || v < 0.0 {
        return Err(n
            .at
            .error(format!("'{}': {v} is not a duration", n.keyword)));
    }
    Ok(v)
}

fn ip(n: &Node, i: usize) -> R<IpAddr> {
    let s = arg(n, i, "an address")?;
    s.parse().map_err(|_| {
        n.at.error(format!("'{}': '{s}' is not an IP address", n.keyword))
    })
}

fn block(n: &Node) -> R<&[Node]> {
    n.block
        .as_deref()
        .ok_or_else(|| n.at.error(format!("'{}' needs a {{ … }} block", n.keyword)))
}

/// The command line of a script keyword (its words joined back; keepalived splits them
/// again with its own quoting).
fn command(n: &Node) -> R<String> {
    if n.args.is_empty() {
        return Err(n.at.error(format!("'{}' needs a command", n.keyword)));
    }
    Ok(n.args.join(" "))
}

fn bool_arg(n: &Node) -> R<bool> {
    match n.args.first().map(|s| s.to_ascii_lowercase()) {
        None => Ok(true),
        Some(s) if ["on", "true", "yes"].contains(&s.as_str()) => Ok(true),
        Some(s) if ["off", "false", "no"].contains(&s.as_str()) => Ok(false),
        Some(s) => Err(n.at.error(format!("'{}': '{s}' is not on/off", n.keyword))),
    }
}

/// Keywords that take one value: keepalived reads only the first word after them, so more
/// words on the line (`authentication { auth_type PASS  auth_pass 1111 }` is one line to it)
/// are ignored by keepalived and by xvs alike, and said.
const ONE_VALUE: &[&str] = &[
    "auth_type",
    "auth_pass",
    "connect_port",
    "connect_timeout",
    "nb_get_retry",
    "retry",
    "delay_before_retry",
    "delay_loop",
    "lb_algo",
    "lvs_sched",
    "protocol",
    "priority",
    "state",
    "interface",
    "virtual_router_id",
    "advert_int",
    "router_id",
    "quorum",
    "hysteresis",
    "misc_timeout",
    "path",
    "digest",
    "interval",
    "timeout",
    "rise",
    "fall",
    "preempt_delay",
    "garp_master_delay",
    "garp_master_repeat",
    "version",
    "virtualhost",
    "unicast_src_ip",
    "uthreshold",
    "lthreshold",
    "persistence_timeout",
];

fn extra_words(cx: &mut Cx, nodes: &[Node]) {
    for n in nodes {
        if ONE_VALUE.contains(&n.keyword.as_str()) && n.args.len() > 1 {
            cx.warn(
                &n.at,
                format!(
                    "'{}' takes one value: '{}' after it is ignored (as keepalived ignores it: \
                     one keyword per line)",
                    n.keyword,
                    n.args[1..].join(" ")
                ),
            );
        }
        if let Some(b) = &n.block {
            extra_words(cx, b);
        }
    }
}

/// Converts the tree of a keepalived.conf.
pub fn convert(nodes: &[Node]) -> R<Converted> {
    let mut cx = Cx {
        out: Converted::default(),
    };
    extra_words(&mut cx, nodes);
    let mut sync_daemon: Option<(&Node, SyncConfig)> = None;
    for n in nodes {
        match n.keyword.as_str() {
            "global_defs" => {
                if let Some(s) = global_defs(&mut cx, n)? {
                    sync_daemon = Some((n, s));
                }
            }
            "vrrp_script" => {
                let i = cx.out.config.vrrp.scripts.len();
                let s = vrrp_script(&mut cx, n)?;
                cx.origin(format!("vrrp.scripts[{i}]"), &n.at);
                cx.out.config.vrrp.scripts.push(s);
            }
            "vrrp_instance" => {
                let i = cx.out.config.vrrp.instances.len();
                let (inst, legacy_sync) = vrrp_instance(&mut cx, n)?;
                cx.origin(format!("vrrp.instances[{i}]"), &n.at);
                if let Some(ifname) = legacy_sync
                    && sync_daemon.is_none()
                {
                    sync_daemon = Some((
                        n,
                        SyncConfig {
                            interface: ifname,
                            instance: Some(inst.name.clone()),
                            role: None,
                            syncid: inst.vrid,
                            director_id: None,
                            maxlen: None,
                            group: None,
                            port: None,
                            ttl: None,
                            refresh: None,
                        },
                    ));
                }
                cx.out.config.vrrp.instances.push(inst);
            }
            "vrrp_sync_group" => {
                let i = cx.out.config.vrrp.sync_groups.len();
                let g = sync_group(&mut cx, n)?;
                cx.origin(format!("vrrp.sync_groups[{i}]"), &n.at);
                cx.out.config.vrrp.sync_groups.push(g);
            }
            "virtual_server" => {
                let i = cx.out.config.services.len();
                let s = virtual_server(&mut cx, n, i)?;
                cx.origin(format!("services[{i}]"), &n.at);
                cx.out.config.services.push(s);
            }
            _ => cx.unsupported(n, "(top level)"),
        }
    }
    if let Some((n, mut s)) = sync_daemon {
        // keepalived: with an instance, the sync id defaults to its VRID; an unknown instance
        // drops the whole sync configuration.
        if let Some(name) = &s.instance {
            match cx
                .out
                .config
                .vrrp
                .instances
                .iter()
                .find(|i| &i.name == name)
            {
                Some(i) => {
                    if s.syncid == 0 {
                        s.syncid = i.vrid;
                    }
                }
                None => {
                    return Err(n
                        .at
                        .error(format!("lvs_sync_daemon: no vrrp_instance named '{name}'")));
                }
            }
        } else {
            s.role = Some(crate::config::ha::SyncRole::Both);
        }
        cx.origin("sync".into(), &n.at);
        cx.out.config.sync = Some(s);
    }
    // The interfaces xvs serves: those the instances and the sync daemon name (xvsd adds
    // those given on its command line).
    let mut ifs: Vec<String> = Vec::new();
    for i in &cx.out.config.vrrp.instances {
        if !ifs.contains(&i.interface) {
            ifs.push(i.interface.clone());
        }
    }
    cx.out.config.interfaces = ifs;
    Ok(cx.out)
}

fn global_defs(cx: &mut Cx, n: &Node) -> R<Option<SyncConfig>> {
    let mut sync = None;
    for k in block(n)? {
        match k.keyword.as_str() {
            "router_id" => cx.out.config.vrrp.router_id = Some(arg(k, 0, "a name")?.to_string()),
            "lvs_sync_daemon" => sync = Some(lvs_sync_daemon(cx, k)?),
            "lvs_timeouts" => {
                let mut it = k.args.iter();
                while let Some(w) = it.next() {
                    let v: u32 = it
                        .next()
                        .and_then(|v| v.parse().ok())
                        .ok_or_else(|| k.at.error(format!("lvs_timeouts: {w} needs seconds")))?;
                    let t = &mut cx.out.config.timeouts;
                    match w.as_str() {
                        "tcp" => t.tcp = Some(v),
                        "tcpfin" => t.tcpfin = Some(v),
                        "udp" => t.udp = Some(v),
                        _ => return Err(k.at.error(format!("lvs_timeouts: unknown '{w}'"))),
                    }
                }
            }
            _ => cx.unsupported(k, "in global_defs"),
        }
    }
    Ok(sync)
}

/// `lvs_sync_daemon IF [inst VI] [id N] [maxlen N] [port N] [ttl N] [group A]`, or the
/// legacy `lvs_sync_daemon IF VI [SYNCID]`.
fn lvs_sync_daemon(cx: &mut Cx, k: &Node) -> R<SyncConfig> {
    let mut s = SyncConfig {
        interface: arg(k, 0, "an interface")?.to_string(),
        instance: None,
        role: None,
        syncid: 0,
        director_id: None,
        maxlen: None,
        group: None,
        port: None,
        ttl: None,
        refresh: None,
    };
    let words = &k.args[1..];
    let keyed = ["inst", "id", "maxlen", "port", "ttl", "group"];
    if words.first().is_some_and(|w| !keyed.contains(&w.as_str())) {
        // Legacy positional form.
        s.instance = Some(words[0].clone());
        if let Some(id) = words.get(1) {
            s.syncid = id.parse().map_err(|_| {
                k.at.error(format!("lvs_sync_daemon: '{id}' is not a sync id"))
            })?;
            cx.warn(
                &k.at,
                "lvs_sync_daemon: please use keyword \"id\" (as keepalived says)",
            );
        }
        return Ok(s);
    }
    let mut it = words.iter();
    while let Some(w) = it.next() {
        let v = it
            .next()
            .ok_or_else(|| k.at.error(format!("lvs_sync_daemon: '{w}' needs a value")))?;
        let bad = || {
            k.at.error(format!("lvs_sync_daemon: '{v}' is not a valid {w}"))
        };
        match w.as_str() {
            "inst" => s.instance = Some(v.clone()),
            "id" => s.syncid = v.parse().map_err(|_| bad())?,
            "maxlen" => s.maxlen = Some(v.parse().map_err(|_| bad())?),
            "port" => s.port = Some(v.parse().map_err(|_| bad())?),
            "ttl" => s.ttl = Some(v.parse().map_err(|_| bad())?),
            "group" => {
                let g: IpAddr = v.parse().map_err(|_| bad())?;
                if g.is_multicast() {
                    s.group = Some(g);
                } else {
                    cx.warn(
                        &k.at,
                        format!("lvs_sync_daemon: group {g} is not multicast; ignored"),
                    );
                }
            }
            _ => return Err(k.at.error(format!("lvs_sync_daemon: unknown option {w}"))),
        }
    }
    Ok(s)
}

fn vrrp_script(cx: &mut Cx, n: &Node) -> R<VrrpScriptConfig> {
    let mut s = VrrpScriptConfig {
        name: arg(n, 0, "a name")?.to_string(),
        script: String::new(),
        interval: 1.0,
        timeout: None,
        weight: 0,
        rise: 1,
        fall: 1,
        init_fail: false,
        user: None,
    };
    for k in block(n)? {
        match k.keyword.as_str() {
            "script" => s.script = command(k)?,
            "interval" => s.interval = secs(k)?.max(1.0).trunc(),
            "timeout" => {
                let t = secs(k)?;
                s.timeout = (t > 0.0).then_some(t);
            }
            "weight" => {
                s.weight = num(k, 0, "a weight")?;
                if k.args.get(1).is_some_and(|w| w == "reverse") {
                    s.weight = -s.weight;
                }
            }
            "rise" => s.rise = num(k, 0, "a count")?,
            "fall" => s.fall = num(k, 0, "a count")?,
            "user" => s.user = Some(arg(k, 0, "a user")?.to_string()),
            "init_fail" => s.init_fail = true,
            _ => cx.unsupported(k, "in vrrp_script"),
        }
    }
    if s.script.is_empty() {
        return Err(n.at.error(format!("vrrp_script {}: no script", s.name)));
    }
    Ok(s)
}

/// Tracked objects: `NAME [weight W [reverse]]` per line.
fn tracks(k: &Node) -> R<Vec<TrackConfig>> {
    let mut out = Vec::new();
    for t in block(k)? {
        let mut weight = None;
        if t.args.first().is_some_and(|w| w == "weight") {
            let w: i32 = num(t, 1, "a weight")?;
            weight = Some(if t.args.get(2).is_some_and(|r| r == "reverse") {
                -w
            } else {
                w
            });
        }
        out.push(TrackConfig {
            name: t.keyword.clone(),
            weight,
        });
    }
    Ok(out)
}

fn vrrp_instance(cx: &mut Cx, n: &Node) -> R<(VrrpInstanceConfig, Option<String>)> {
    let name = arg(n, 0, "a name")?.to_string();
    let mut c = VrrpInstanceConfig {
        name: name.clone(),
        interface: String::new(),
        vrid: 0,
        state: InitialState::Backup,
        priority: None,
        advert_int: 1.0,
        version: None,
        authentication: None,
        virtual_ipaddress: Vec::new(),
        unicast_src_ip: None,
        unicast_peer: Vec::new(),
        nopreempt: false,
        preempt_delay: 0.0,
        garp_master_delay: 5.0,
        garp_master_repeat: 5,
        garp_master_refresh: 0.0,
        garp_master_refresh_repeat: 1,
        track_interface: Vec::new(),
        track_script: Vec::new(),
        notify_master: None,
        notify_backup: None,
        notify_fault: None,
        notify_stop: None,
        notify: None,
    };
    let mut state_set = false;
    let mut legacy_sync = None;
    for k in block(n)? {
        match k.keyword.as_str() {
            "state" => {
                let s = arg(k, 0, "MASTER or BACKUP")?;
                let st = match s {
                    "MASTER" => InitialState::Master,
                    "BACKUP" => InitialState::Backup,
                    _ => return Err(k.at.error(format!("state: '{s}' is not MASTER or BACKUP"))),
                };
                if state_set && st != c.state {
                    cx.warn(
                        &k.at,
                        "state given twice; the first is kept (as keepalived does)",
                    );
                } else {
                    c.state = st;
                    state_set = true;
                }
            }
            "interface" => c.interface = arg(k, 0, "an interface")?.to_string(),
            "virtual_router_id" => c.vrid = num(k, 0, "a router id (1..255)")?,
            "priority" => c.priority = Some(num(k, 0, "a priority (1..255)")?),
            "advert_int" => c.advert_int = secs(k)?,
            "version" => c.version = Some(num(k, 0, "2 or 3")?),
            "authentication" => {
                let (mut kind, mut pass) = (None, None);
                for a in block(k)? {
                    match a.keyword.as_str() {
                        "auth_type" => kind = Some(arg(a, 0, "PASS or AH")?.to_string()),
                        "auth_pass" => pass = Some(arg(a, 0, "a password")?.to_string()),
                        _ => cx.unsupported(a, "in authentication"),
                    }
                }
                c.authentication = Some(AuthConfig {
                    kind: kind.unwrap_or_else(|| "PASS".into()),
                    password: pass.unwrap_or_default(),
                });
            }
            "virtual_ipaddress" => {
                for (j, v) in block(k)?.iter().enumerate() {
                    let vip = vip(cx, v)?;
                    cx.origin(
                        format!(
                            "vrrp.instances[{}].virtual_ipaddress[{j}]",
                            cx.out.config.vrrp.instances.len()
                        ),
                        &v.at,
                    );
                    c.virtual_ipaddress.push(vip);
                }
            }
            "track_interface" => c.track_interface = tracks(k)?,
            "track_script" => c.track_script = tracks(k)?,
            "unicast_src_ip" => c.unicast_src_ip = Some(ip(k, 0)?),
            "unicast_peer" => {
                for p in block(k)? {
                    let a: IpAddr = p.keyword.parse().map_err(|_| {
                        p.at.error(format!(
                            "unicast_peer: '{}' is not an IP address",
                            p.keyword
                        ))
                    })?;
                    if !p.args.is_empty() {
                        cx.warn(
                            &p.at,
                            "unicast_peer: min_ttl/max_ttl are not implemented by xvs; ignored",
                        );
                    }
                    c.unicast_peer.push(a);
                }
            }
            "nopreempt" => c.nopreempt = true,
            "preempt" => c.nopreempt = false,
            "preempt_delay" => c.preempt_delay = secs(k)?,
            "garp_master_delay" => c.garp_master_delay = secs(k)?,
            "garp_master_repeat" => c.garp_master_repeat = num(k, 0, "a count")?,
            "garp_master_refresh" => c.garp_master_refresh = secs(k)?,
            "garp_master_refresh_repeat" => c.garp_master_refresh_repeat = num(k, 0, "a count")?,
            "notify_master" => c.notify_master = Some(command(k)?),
            "notify_backup" => c.notify_backup = Some(command(k)?),
            "notify_fault" => c.notify_fault = Some(command(k)?),
            "notify_stop" => c.notify_stop = Some(command(k)?),
            "notify" => c.notify = Some(command(k)?),
            "lvs_sync_daemon_interface" => {
                legacy_sync = Some(arg(k, 0, "an interface")?.to_string());
            }
            _ => cx.unsupported(k, "in vrrp_instance"),
        }
    }
    if c.interface.is_empty() {
        return Err(n.at.error(format!("vrrp_instance {name}: no interface")));
    }
    if c.vrid == 0 {
        return Err(n
            .at
            .error(format!("vrrp_instance {name}: no virtual_router_id")));
    }
    Ok((c, legacy_sync))
}

/// `ADDR[/LEN] [dev IF] [brd X] [scope S] [label L]`.
fn vip(cx: &mut Cx, v: &Node) -> R<VipConfig> {
    let (a, len) = match v.keyword.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (v.keyword.as_str(), None),
    };
    let addr: IpAddr = a.parse().map_err(|_| {
        v.at.error(format!(
            "virtual_ipaddress: '{}' is not an address",
            v.keyword
        ))
    })?;
    let prefix = match len {
        Some(l) => Some(l.parse().map_err(|_| {
            v.at.error(format!("virtual_ipaddress: '{l}' is not a prefix length"))
        })?),
        None => None,
    };
    let mut dev = None;
    let mut it = v.args.iter();
    while let Some(w) = it.next() {
        match w.as_str() {
            "dev" => dev = it.next().cloned(),
            "brd" | "broadcast" | "scope" | "label" => {
                it.next();
                cx.warn(
                    &v.at,
                    format!("virtual_ipaddress: '{w}' is not implemented by xvs; ignored"),
                );
            }
            _ => cx.warn(
                &v.at,
                format!("virtual_ipaddress: '{w}' is not implemented by xvs; ignored"),
            ),
        }
    }
    Ok(VipConfig { addr, prefix, dev })
}

fn sync_group(cx: &mut Cx, n: &Node) -> R<SyncGroupConfig> {
    let mut g = SyncGroupConfig {
        name: arg(n, 0, "a name")?.to_string(),
        group: Vec::new(),
        notify_master: None,
        notify_backup: None,
        notify_fault: None,
        notify_stop: None,
        notify: None,
    };
    for k in block(n)? {
        match k.keyword.as_str() {
            "group" => {
                for m in block(k)? {
                    g.group.push(m.keyword.clone());
                    g.group.extend(m.args.iter().cloned());
                }
            }
            "notify_master" => g.notify_master = Some(command(k)?),
            "notify_backup" => g.notify_backup = Some(command(k)?),
            "notify_fault" => g.notify_fault = Some(command(k)?),
            "notify_stop" => g.notify_stop = Some(command(k)?),
            "notify" => g.notify = Some(command(k)?),
            _ => cx.unsupported(k, "in vrrp_sync_group"),
        }
    }
    Ok(g)
}

/// Settings a checker inherits from its real server and virtual server.
#[derive(Debug, Clone, Copy, Default)]
struct Inherit {
    delay_loop: Option<f64>,
    connect_timeout: Option<f64>,
    retry: Option<u32>,
    delay_before_retry: Option<f64>,
}

impl Inherit {
    fn take(&mut self, k: &Node) -> R<bool> {
        match k.keyword.as_str() {
            "delay_loop" => self.delay_loop = Some(secs(k)?),
            "connect_timeout" => self.connect_timeout = Some(secs(k)?),
            "retry" | "nb_get_retry" => self.retry = Some(num(k, 0, "a count")?),
            "delay_before_retry" => self.delay_before_retry = Some(secs(k)?),
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn over(self, parent: Inherit) -> Inherit {
        Inherit {
            delay_loop: self.delay_loop.or(parent.delay_loop),
            connect_timeout: self.connect_timeout.or(parent.connect_timeout),
            retry: self.retry.or(parent.retry),
            delay_before_retry: self.delay_before_retry.or(parent.delay_before_retry),
        }
    }
}

fn virtual_server(cx: &mut Cx, n: &Node, index: usize) -> R<ServiceConfig> {
    let mut s = ServiceConfig {
        proto: None,
        vip: None,
        port: None,
        fwmark: None,
        family: Default::default(),
        scheduler: "wlc".into(),
        flags: Vec::new(),
        persistence: None,
        one_packet: false,
        local_addrs: Vec::new(),
        reals: Vec::new(),
        check: None,
        inhibit_on_failure: false,
        sorry_server: None,
        quorum: 0,
        notify_up: None,
        notify_down: None,
    };
    match n.args.first().map(String::as_str) {
        Some("fwmark") => {
            s.fwmark = Some(num(n, 1, "a firewall mark")?);
        }
        Some("group") => {
            return Err(n.at.error(
                "virtual_server group is not implemented by xvs: list each address as its own virtual_server",
            ));
        }
        Some(_) => {
            let a = ip(n, 0)?;
            s.vip = Some(a);
            s.port = Some(match n.args.get(1) {
                Some(p) => p
                    .parse()
                    .map_err(|_| n.at.error(format!("virtual_server: '{p}' is not a port")))?,
                None => 0,
            });
        }
        None => return Err(n.at.error("virtual_server needs IP PORT or fwmark N")),
    }
    let mut method = None;
    let mut protocol_set = false;
    let mut algo_set = false;
    let mut vs = Inherit::default();
    let mut virtualhost = None;
    let mut weight_default = 1u32;
    let mut sorry: Option<(IpAddr, Option<u16>, At)> = None;
    let mut reals = Vec::new();
    for k in block(n)? {
        if vs.take(k)? {
            continue;
        }
        match k.keyword.as_str() {
            "lb_algo" | "lvs_sched" => {
                s.scheduler = arg(k, 0, "a scheduler")?.to_string();
                algo_set = true;
            }
            "lb_kind" | "lvs_method" => {
                method = Some(method_of(k)?);
            }
            "persistence_timeout" => {
                let t = if k.args.is_empty() {
                    360
                } else {
                    num(k, 0, "seconds")?
                };
                let netmask = s.persistence.and_then(|p| p.netmask);
                s.persistence = (t > 0).then_some(PersistenceConfig {
                    timeout: t,
                    netmask,
                });
            }
            "persistence_granularity" => {
                let m = arg(k, 0, "a netmask")?;
                let len = netmask_len(m).ok_or_else(|| {
                    k.at.error(format!("persistence_granularity: '{m}' is not a netmask"))
                })?;
                let timeout = s.persistence.map_or(360, |p| p.timeout);
                s.persistence = Some(PersistenceConfig {
                    timeout,
                    netmask: Some(len),
                });
            }
            "protocol" => {
                let p = arg(k, 0, "TCP, UDP or SCTP")?.to_ascii_uppercase();
                s.proto = Some(match p.as_str() {
                    "TCP" => ProtoConfig::Tcp,
                    "UDP" => ProtoConfig::Udp,
                    "SCTP" => ProtoConfig::Sctp,
                    _ => {
                        return Err(k
                            .at
                            .error(format!("protocol: '{p}' is not TCP, UDP or SCTP")));
                    }
                });
                protocol_set = true;
            }
            "sorry_server" => {
                let a = ip(k, 0)?;
                let p = match k.args.get(1) {
                    Some(p) => Some(
                        p.parse()
                            .map_err(|_| k.at.error("sorry_server: bad port"))?,
                    ),
                    None => None,
                };
                sorry = Some((a, p, k.at.clone()));
            }
            "quorum" => {
                let q: u32 = num(k, 0, "a count")?;
                if q > 1 {
                    s.quorum = q;
                    cx.warn(&k.at, "quorum: xvs counts healthy servers, keepalived sums their weights; the same with weights of 1");
                }
            }
            "hysteresis" => {
                if num::<u32>(k, 0, "a count")? != 0 {
                    cx.unsupported(k, "in virtual_server");
                }
            }
            "virtualhost" => virtualhost = Some(arg(k, 0, "a host name")?.to_string()),
            "inhibit_on_failure" => s.inhibit_on_failure = bool_arg(k)?,
            "ops" => s.one_packet = true,
            "sh-port" | "sh-fallback" | "mh-port" | "mh-fallback" => {
                s.flags.push(k.keyword.clone());
            }
            "weight" => weight_default = num(k, 0, "a weight")?,
            "real_server" => reals.push(k),
            _ => cx.unsupported(k, "in virtual_server"),
        }
    }
    if s.fwmark.is_none() && !protocol_set {
        cx.warn(
            &n.at,
            "virtual server has no protocol: UDP, as keepalived defaults",
        );
        s.proto = Some(ProtoConfig::Udp);
    }
    if s.fwmark.is_some() && protocol_set {
        cx.warn(
            &n.at,
            "protocol is ignored for a fwmark service (as keepalived does)",
        );
        s.proto = None;
    }
    if s.fwmark.is_some() && s.vip.is_none() {
        s.family = Default::default();
    }
    if !algo_set {
        cx.warn(
            &n.at,
            "virtual server has no lb_algo: wlc, as keepalived defaults",
        );
    }
    let method = method.unwrap_or_else(|| {
        cx.warn(
            &n.at,
            "virtual server has no lb_kind: NAT, as keepalived defaults",
        );
        (MethodName::Nat, TunnelSpec::default())
    });
    if s.port == Some(0) && s.persistence.is_none() && s.fwmark.is_none() {
        cx.warn(
            &n.at,
            "zero port only valid for persistent services: persistence 360 s (as keepalived)",
        );
        s.persistence = Some(PersistenceConfig {
            timeout: 360,
            netmask: None,
        });
    }
    // DR/TUN (and mark services) take the virtual port, as keepalived resets them.
    let take_vport = method.0 != MethodName::Nat;
    for (ri, r) in reals.iter().enumerate() {
        let rc = real_server(
            cx,
            r,
            &s,
            method,
            take_vport,
            vs,
            weight_default,
            virtualhost.as_deref(),
        )?;
        cx.origin(format!("services[{index}].reals[{ri}]"), &r.at);
        s.reals.push(rc);
    }
    if let Some((addr, port, at)) = sorry {
        cx.origin(format!("services[{index}].sorry_server"), &at);
        s.sorry_server = Some(RealConfig {
            spec: RealSpec {
                addr,
                port: if take_vport { None } else { port.or(s.port) },
                method: method.0,
                weight: 1,
                u_threshold: 0,
                l_threshold: 0,
                tunnel: method.1,
            },
            check: None,
            notify_up: None,
            notify_down: None,
            unknown: Default::default(),
        });
    }
    Ok(s)
}

/// `lb_kind NAT|DR|TUN`, with keepalived's tunnel words after TUN: `type ipip|gue|gre`,
/// `port N`, `nocsum|csum|remcsum`.
fn method_of(k: &Node) -> R<(MethodName, TunnelSpec)> {
    let method = match arg(k, 0, "NAT, DR or TUN")?.to_ascii_uppercase().as_str() {
        "NAT" => MethodName::Nat,
        "DR" => MethodName::Dr,
        "TUN" => MethodName::Tun,
        m => return Err(k.at.error(format!("lb_kind: '{m}' is not NAT, DR or TUN"))),
    };
    let mut t = TunnelSpec::default();
    let mut words = k.args[1..].iter();
    while let Some(w) = words.next() {
        let mut value = |what: &str| {
            words
                .next()
                .ok_or_else(|| k.at.error(format!("lb_kind: '{w}' needs {what}")))
        };
        match w.as_str() {
            "type" => {
                t.tun_type = Some(match value("ipip, gue or gre")?.as_str() {
                    "ipip" => TunTypeName::Ipip,
                    "gue" => TunTypeName::Gue,
                    "gre" => TunTypeName::Gre,
                    x => {
                        return Err(k.at.error(format!(
                            "lb_kind: tunnel type '{x}' is not ipip, gue or gre"
                        )));
                    }
                });
            }
            "port" => {
                let p = value("a port")?;
                t.tun_port = Some(
                    p.parse()
                        .map_err(|_| k.at.error(format!("lb_kind: '{p}' is not a port")))?,
                );
            }
            "nocsum" => t.tun_csum = Some(TunCsumName::Nocsum),
            "csum" => t.tun_csum = Some(TunCsumName::Csum),
            "remcsum" => t.tun_csum = Some(TunCsumName::Remcsum),
            x => {
                return Err(k.at.error(format!(
                    "lb_kind: '{x}' is not type, port, nocsum, csum or remcsum"
                )));
            }
        }
    }
    Ok((method, t))
}

/// A dotted IPv4 netmask or a prefix length.
fn netmask_len(m: &str) -> Option<u8> {
    if let Ok(n) = m.parse::<u8>() {
        return (n <= 128).then_some(n);
    }
    let a: std::net::Ipv4Addr = m.parse().ok()?;
    let bits = u32::from(a);
    let len = bits.leading_ones();
    (bits.checked_shl(len).unwrap_or(0) == 0).then_some(len as u8)
}

#[allow(clippy::too_many_arguments)]
fn real_server(
    cx: &mut Cx,
    r: &Node,
    vs: &ServiceConfig,
    vs_method: (MethodName, TunnelSpec),
    take_vport: bool,
    inherit: Inherit,
    weight_default: u32,
    virtualhost: Option<&str>,
) -> R<RealConfig> {
    let addr = ip(r, 0)?;
    let port: Option<u16> = match r.args.get(1) {
        Some(p) => Some(
            p.parse()
                .map_err(|_| r.at.error(format!("real_server: '{p}' is not a port")))?,
        ),
        None => None,
    };
    let mut rc = RealConfig {
        spec: RealSpec {
            addr,
            port: if take_vport || vs.fwmark.is_some() {
                None
            } else {
                port.or(vs.port)
            },
            method: vs_method.0,
            weight: weight_default,
            u_threshold: 0,
            l_threshold: 0,
            tunnel: vs_method.1,
        },
        check: None,
        notify_up: None,
        notify_down: None,
        unknown: Default::default(),
    };
    if take_vport && port.is_some() && port != vs.port && vs.fwmark.is_none() {
        cx.warn(&r.at, "real server port differs from the virtual port: DR/TUN keep the virtual port (as keepalived resets it)");
    }
    let mut rs = Inherit::default();
    let mut checkers = Vec::new();
    for k in block(r).unwrap_or(&[]) {
        if rs.take(k)? {
            continue;
        }
        match k.keyword.as_str() {
            "weight" => rc.spec.weight = num(k, 0, "a weight")?,
            "lb_kind" | "lvs_method" => (rc.spec.method, rc.spec.tunnel) = method_of(k)?,
            "inhibit_on_failure" => {
                if bool_arg(k)? && !vs.inhibit_on_failure {
                    cx.warn(
                        &k.at,
                        "inhibit_on_failure is per virtual server in xvs: set it there",
                    );
                }
            }
            "notify_up" => rc.notify_up = Some(command(k)?),
            "notify_down" => rc.notify_down = Some(command(k)?),
            "uthreshold" => rc.spec.u_threshold = num(k, 0, "a count")?,
            "lthreshold" => rc.spec.l_threshold = num(k, 0, "a count")?,
            "TCP_CHECK" | "HTTP_GET" | "SSL_GET" | "MISC_CHECK" => checkers.push(k),
            _ => cx.unsupported(k, "in real_server"),
        }
    }
    let inherit = rs.over(inherit);
    for (i, k) in checkers.iter().enumerate() {
        if i > 0 {
            cx.warn(&k.at, "a second checker on one real server is not implemented by xvs (keepalived needs all to pass); the first is used");
            continue;
        }
        rc.check = Some(checker(cx, k, inherit, virtualhost)?);
    }
    Ok(rc)
}

fn checker(cx: &mut Cx, k: &Node, inherit: Inherit, virtualhost: Option<&str>) -> R<CheckConfig> {
    let kind = match k.keyword.as_str() {
        "TCP_CHECK" => CheckKind::Tcp,
        "HTTP_GET" => CheckKind::Http,
        "SSL_GET" => CheckKind::Https,
        _ => CheckKind::Misc,
    };
    let mut c = CheckConfig {
        kind,
        port: None,
        path: None,
        status: Vec::new(),
        digest: None,
        expect: None,
        host: virtualhost.map(str::to_string),
        send: None,
        command: None,
        interval: 60.0,
        timeout: 5.0,
        retry_interval: None,
        rise: 1,
        fall: 1,
        start: StartState::Up,
    };
    let mut own = Inherit::default();
    let mut urls = 0;
    let mut misc_timeout = None;
    for o in block(k)? {
        if own.take(o)? {
            continue;
        }
        match o.keyword.as_str() {
            "connect_port" => c.port = Some(num(o, 0, "a port")?),
            "connect_ip" | "bindto" | "bind_port" | "bind_if" | "fwmark" | "warmup"
            | "log_all_failures" => {
                cx.unsupported(o, &format!("in {}", k.keyword));
            }
            "alpha" => {
                if bool_arg(o)? {
                    c.start = StartState::Down;
                }
            }
            "url" => {
                urls += 1;
                if urls > 1 {
                    cx.warn(
                        &o.at,
                        "a second url is not implemented by xvs; the first is checked",
                    );
                    continue;
                }
                for u in block(o)? {
                    match u.keyword.as_str() {
                        "path" => c.path = Some(arg(u, 0, "a path")?.to_string()),
                        "digest" => c.digest = Some(arg(u, 0, "an MD5 digest")?.to_string()),
                        "status_code" => {
                            for w in &u.args {
                                match w.split_once('-') {
                                    Some((a, b)) => {
                                        let (a, b): (u16, u16) = (
                                            a.parse().map_err(|_| {
                                                u.at.error("status_code: bad range")
                                            })?,
                                            b.parse().map_err(|_| {
                                                u.at.error("status_code: bad range")
                                            })?,
                                        );
                                        c.status.extend(a..=b);
                                    }
                                    None => c.status.push(w.parse().map_err(|_| {
                                        u.at.error(format!("status_code: '{w}' is not a code"))
                                    })?),
                                }
                            }
                        }
                        "virtualhost" => c.host = Some(arg(u, 0, "a host")?.to_string()),
                        _ => cx.unsupported(u, "in url"),
                    }
                }
            }
            "virtualhost" => c.host = Some(arg(o, 0, "a host")?.to_string()),
            "misc_path" => c.command = Some(command(o)?),
            "misc_timeout" => misc_timeout = Some(secs(o)?),
            _ => cx.unsupported(o, &format!("in {}", k.keyword)),
        }
    }
    if matches!(kind, CheckKind::Http | CheckKind::Https) && c.path.is_none() {
        return Err(k.at.error(format!("{}: no url {{ path … }}", k.keyword)));
    }
    if kind == CheckKind::Misc && c.command.is_none() {
        return Err(k.at.error("MISC_CHECK: no misc_path"));
    }
    if c.status.is_empty() && matches!(kind, CheckKind::Http | CheckKind::Https) {
        // keepalived: any 2xx.
        c.status = (200..=299).collect();
    }
    let i = own.over(inherit);
    c.interval = i.delay_loop.unwrap_or(60.0).max(0.001);
    c.timeout = match kind {
        CheckKind::Misc => misc_timeout.filter(|t| *t > 0.0).unwrap_or(c.interval),
        _ => i.connect_timeout.unwrap_or(5.0),
    }
    .max(0.001);
    let retry = i
        .retry
        .unwrap_or(if kind == CheckKind::Misc { 0 } else { 1 });
    c.fall = retry + 1;
    let dbr =
        i.delay_before_retry
            .unwrap_or(if matches!(kind, CheckKind::Http | CheckKind::Https) {
                3.0
            } else {
                1.0
            });
    c.retry_interval = (retry > 0).then_some(dbr.max(0.001));
    Ok(c)
}
