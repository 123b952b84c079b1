//! ipvsadm 1.31's listings, byte for byte: `-Ln` and its `--stats`, `--rate`, `--thresholds`,
//! `--persistent-conn` and `--exact` variants, `-Lnc` and `-L --timeout`. Addresses are numeric
//! unless the program gives a [`Namer`] (xvsadm's `-L` without `-n` asks the system's
//! resolver for host and service names, as ipvsadm does).

use crate::change::{Key, mask_text, service_order};
use crate::proto::{ConnsReply, ListReply, RealView, ServiceView};
use std::fmt::Write;
use std::net::IpAddr;
use xvs_core::service::{Family, ServiceKey, fmt_addr_port};

/// Which columns a listing shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Columns {
    /// Forward, Weight, ActiveConn, InActConn.
    #[default]
    Default,
    /// `--stats`: totals.
    Stats,
    /// `--rate`: rates.
    Rate,
    /// `--thresholds`.
    Thresholds,
    /// `--persistent-conn`.
    PersistentConn,
}

/// How to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Format {
    /// Columns.
    pub columns: Columns,
    /// `--exact`: whole numbers instead of K/M/G/T.
    pub exact: bool,
    /// `--nosort`: table order instead of address order.
    pub nosort: bool,
    /// Names for addresses and ports (`None`: numeric, `-n`).
    pub names: Option<Namer>,
}

/// How a listing names `addr:port` (the flag: UDP, for the service name), e.g. with host and
/// service names looked up.
#[derive(Clone, Copy)]
pub struct Namer(pub fn(&IpAddr, u16, bool) -> String);

impl PartialEq for Namer {
    fn eq(&self, other: &Namer) -> bool {
        std::ptr::fn_addr_eq(self.0, other.0)
    }
}

impl Eq for Namer {}

impl std::fmt::Debug for Namer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Namer")
    }
}

/// `addr:port`, named if `names` says so.
fn endpoint(names: Option<Namer>, addr: &IpAddr, port: u16, udp: bool) -> String {
    match names {
        Some(n) => (n.0)(addr, port, udp),
        None => fmt_addr_port(addr, port),
    }
}

/// ipvsadm's version line; scripts match `size=(\d+)`.
pub fn version_line(table_size: u64) -> String {
    format!("IP Virtual Server version 1.2.1 (size={table_size})\n")
}

fn title(out: &mut String, c: Columns) {
    let five = |out: &mut String, a: &str, b: &str, c: &str, d: &str, e: &str| {
        let _ = writeln!(
            out,
            "{:<33} {a:>8} {b:>8} {c:>8} {d:>8} {e:>8}\n  -> RemoteAddress:Port",
            "Prot LocalAddress:Port"
        );
    };
    match c {
        Columns::Stats => five(out, "Conns", "InPkts", "OutPkts", "InBytes", "OutBytes"),
        Columns::Rate => five(out, "CPS", "InPPS", "OutPPS", "InBPS", "OutBPS"),
        Columns::Thresholds => {
            let _ = writeln!(
                out,
                "{:<33} {:<10} {:<10} {:<10} {:<10}\n  -> RemoteAddress:Port",
                "Prot LocalAddress:Port", "Uthreshold", "Lthreshold", "ActiveConn", "InActConn"
            );
        }
        Columns::PersistentConn => {
            let _ = writeln!(
                out,
                "{:<33} {:<9} {:<11} {:<10} {:<10}\n  -> RemoteAddress:Port",
                "Prot LocalAddress:Port", "Weight", "PersistConn", "ActiveConn", "InActConn"
            );
        }
        Columns::Default => out.push_str(
            "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n",
        ),
    }
}

fn largenum(out: &mut String, i: u64, exact: bool) {
    let _ = if exact {
        let len = i.to_string().len();
        write!(out, "{i:>w$}", w = if len <= 8 { 9 } else { len + 1 })
    } else if i < 100_000_000 {
        write!(out, "{i:>9}")
    } else if i < 1_000_000_000 {
        write!(out, "{:>8}K", i / 1000)
    } else if i < 100_000_000_000 {
        write!(out, "{:>8}M", i / 1_000_000)
    } else if i < 100_000_000_000_000 {
        write!(out, "{:>8}G", i / 1_000_000_000)
    } else {
        write!(out, "{:>8}T", i / 1_000_000_000_000)
    };
}

fn truncate(mut s: String, at: usize) -> String {
    s.truncate(at);
    s
}

fn service_name(k: &ServiceKey, names: Option<Namer>) -> String {
    match k {
        ServiceKey::Fwmark { mark, family } => match family {
            Family::V4 => format!("FWM  {mark}"),
            Family::V6 => format!("FWM  {mark} IPv6"),
        },
        ServiceKey::Addr { proto, addr, port } => {
            let udp = proto.name() == "UDP";
            let s = format!("{:<4} {}", proto.name(), endpoint(names, addr, *port, udp));
            match addr {
                IpAddr::V4(_) => truncate(s, 33),
                IpAddr::V6(_) => s,
            }
        }
    }
}

fn service_line(out: &mut String, s: &ServiceView, f: Format) {
    let k = s.service.0;
    let name = service_name(&k, f.names);
    match f.columns {
        Columns::Stats | Columns::Rate => {
            let _ = write!(out, "{name:<33}");
            let v = if f.columns == Columns::Stats {
                let c = &s.stats;
                [c.conns, c.in_pkts, c.out_pkts, c.in_bytes, c.out_bytes]
            } else {
                let r = &s.rates;
                [r.cps, r.in_pps, r.out_pps, r.in_bps, r.out_bps]
            };
            for x in v {
                largenum(out, x, f.exact);
            }
        }
        _ => {
            let _ = write!(out, "{name} {}", s.spec.scheduler);
            if !s.spec.flags.is_empty() {
                let _ = write!(out, " ({})", s.spec.flags);
            }
            if let Some(t) = s.spec.persistent {
                let _ = write!(out, " persistent {t}");
                if let Some(m) = s.spec.netmask {
                    let _ = write!(out, " mask {}", mask_text(k.family(), m));
                }
            }
            if s.spec.one_packet {
                out.push_str(" ops");
            }
        }
    }
    out.push('\n');
}

fn real_name(k: &ServiceKey, r: &RealView, names: Option<Namer>) -> String {
    let udp = matches!(k, ServiceKey::Addr { proto, .. } if proto.name() == "UDP");
    let s = endpoint(names, &r.spec.addr, r.spec.port.unwrap_or(k.port()), udp);
    match r.spec.addr {
        IpAddr::V4(_) => truncate(s, 28),
        IpAddr::V6(_) => s,
    }
}

fn real_line(out: &mut String, k: &ServiceKey, r: &RealView, f: Format) {
    let d = real_name(k, r, f.names);
    let _ = match f.columns {
        Columns::Stats => {
            let _ = write!(out, "  -> {d:<28}");
            let c = &r.stats;
            for x in [c.conns, c.in_pkts, c.out_pkts, c.in_bytes, c.out_bytes] {
                largenum(out, x, f.exact);
            }
            writeln!(out)
        }
        Columns::Rate => {
            let x = &r.rates;
            let _ = write!(
                out,
                "  -> {d:<28} {:>8} {:>8} {:>8}",
                x.cps, x.in_pps, x.out_pps
            );
            largenum(out, x.in_bps, f.exact);
            largenum(out, x.out_bps, f.exact);
            writeln!(out)
        }
        Columns::Thresholds => writeln!(
            out,
            "  -> {d:<28} {:<10} {:<10} {:<10} {:<10}",
            r.spec.u_threshold, r.spec.l_threshold, r.active, r.inactive
        ),
        Columns::PersistentConn => writeln!(
            out,
            "  -> {d:<28} {:<9} {:<11} {:<10} {:<10}",
            weight(r),
            r.persist,
            r.active,
            r.inactive
        ),
        Columns::Default => writeln!(
            out,
            "  -> {d:<28} {:<7} {:<6} {:<10} {:<10}",
            xvs_core::service::Method::from(r.spec.method).forward_name(),
            weight(r),
            r.active,
            r.inactive
        ),
    };
}

/// The weight a listing shows: 0 for a failed server of an `inhibit_on_failure` service, as
/// keepalived sets it.
fn weight(r: &RealView) -> u32 {
    if r.up { r.spec.weight } else { 0 }
}

fn service_entry(out: &mut String, s: &ServiceView, f: Format) {
    service_line(out, s, f);
    // A failed server is not listed (keepalived removes it from IPVS) unless its service
    // inhibits on failure.
    let mut reals: Vec<&RealView> = s.reals.iter().filter(|r| r.up || r.inhibit).collect();
    if !f.nosort {
        reals.sort_by_key(|r| (xvs_core::service::addr16(&r.spec.addr), r.spec.port));
    }
    for r in reals {
        real_line(out, &s.service.0, r, f);
    }
}

/// `-L` (every service, with the version line) or `-L -t …` (one service, without it).
/// `None` if the one service asked for does not exist.
pub fn list(reply: &ListReply, f: Format, only: Option<&Key>) -> Option<String> {
    let mut out = String::new();
    match only {
        Some(k) => {
            let s = reply.services.iter().find(|s| s.service == *k)?;
            title(&mut out, f.columns);
            service_entry(&mut out, s, f);
        }
        None => {
            out.push_str(&version_line(reply.table_size));
            title(&mut out, f.columns);
            let mut svcs: Vec<&ServiceView> = reply.services.iter().collect();
            if !f.nosort {
                svcs.sort_by_key(|s| service_order(&s.service.0));
            }
            for s in svcs {
                service_entry(&mut out, s, f);
            }
        }
    }
    Some(out)
}

/// `-L --timeout`.
pub fn timeouts(t: (u32, u32, u32)) -> String {
    format!("Timeout (tcp tcpfin udp): {} {} {}\n", t.0, t.1, t.2)
}

/// `-Lc` (and `-Lc --persistent-conn`, whose title has the persistence-engine columns).
pub fn conns(reply: &ConnsReply, persistent: bool, names: Option<Namer>) -> String {
    let mut out = String::from("IPVS connection entries\n");
    let _ = if persistent {
        writeln!(
            out,
            "pro expire {:<11} {:<18} {:<18} {:<18} {:<16} pe_data",
            "state", "source", "virtual", "destination", "pe name"
        )
    } else {
        writeln!(
            out,
            "pro expire {:<11} {:<18} {:<18} destination",
            "state", "source", "virtual"
        )
    };
    for c in &reply.conns {
        let exp = format!("{:02}:{:02}", c.expires / 60, c.expires % 60);
        let udp = c.proto.eq_ignore_ascii_case("udp");
        let _ = writeln!(
            out,
            "{:<3} {exp:<6} {:<11} {:<18} {:<18} {}",
            c.proto,
            c.state,
            endpoint(names, &c.client, c.cport, udp),
            endpoint(names, &c.vaddr, c.vport, udp),
            endpoint(names, &c.daddr, c.dport, udp)
        );
    }
    out
}

/// `-S`: the rules that rebuild the table, one ipvsadm line each.
pub fn save(reply: &ListReply) -> String {
    let mut out = String::new();
    let mut svcs: Vec<&ServiceView> = reply.services.iter().collect();
    svcs.sort_by_key(|s| service_order(&s.service.0));
    for s in svcs {
        let add = crate::change::Change::AddService {
            service: s.service,
            spec: s.spec.clone(),
        };
        let _ = writeln!(out, "{add}");
        let mut reals: Vec<&RealView> = s.reals.iter().collect();
        reals.sort_by_key(|r| (xvs_core::service::addr16(&r.spec.addr), r.spec.port));
        for r in reals {
            let a = crate::change::Change::AddReal {
                service: s.service,
                real: r.spec.clone(),
            };
            let _ = writeln!(out, "{a}");
        }
    }
    out
}
