//! From the file's `vrrp:` section to instance settings, with keepalived's rules and defaults
//! (keepalived 2.2.7, vrrp_parser.c and `vrrp_complete_instance`): every problem named with
//! its field.

use super::instance::{Params, SEC};
use crate::config::ha::{InitialState, VrrpConfig, VrrpInstanceConfig};
use std::collections::HashSet;
use std::net::IpAddr;

/// A problem: the field path (below `vrrp`) and what is wrong.
pub type Problem = (String, String);

fn seconds(v: f64, field: &str, lo: f64, hi: f64) -> Result<u64, (String, String)> {
    if !v.is_finite() || v < lo || v > hi {
        return Err((field.into(), format!("{v} is outside {lo}..={hi} seconds")));
    }
    Ok((v * SEC as f64).round() as u64)
}

/// The settings of instance `c`.
pub fn params(c: &VrrpInstanceConfig) -> Result<Params, Problem> {
    if c.vrid == 0 {
        return Err((
            "vrid".into(),
            "0 is not a virtual router id (1..=255)".into(),
        ));
    }
    if c.virtual_ipaddress.is_empty() {
        return Err((
            "virtual_ipaddress".into(),
            "an instance needs at least one address".into(),
        ));
    }
    let v6 = c.virtual_ipaddress[0].addr.is_ipv6();
    for (i, v) in c.virtual_ipaddress.iter().enumerate() {
        if v.addr.is_ipv6() != v6 {
            return Err((
                format!("virtual_ipaddress[{i}]"),
                "an instance's addresses are all IPv4 or all IPv6".into(),
            ));
        }
        let max = if v6 { 128 } else { 32 };
        if v.prefix.is_some_and(|p| p > max) {
            return Err((
                format!("virtual_ipaddress[{i}].prefix"),
                format!("{} is longer than {max}", v.prefix.unwrap_or(0)),
            ));
        }
        if let IpAddr::V6(a) = v.addr
            && a.to_ipv4_mapped().is_some()
        {
            return Err((
                format!("virtual_ipaddress[{i}]"),
                "an IPv4-mapped address is not an IPv6 address to hold".into(),
            ));
        }
    }
    let version = match (c.version, v6) {
        (None, true) | (Some(3), _) => 3,
        (None, false) | (Some(2), false) => 2,
        (Some(2), true) => {
            return Err((
                "version".into(),
                "VRRPv2 carries IPv4 addresses only; IPv6 instances use version 3".into(),
            ));
        }
        (Some(v), _) => return Err(("version".into(), format!("{v} is not 2 or 3"))),
    };
    let priority = match (c.priority, c.state) {
        (Some(0), _) => {
            return Err(("priority".into(), "0 is not a priority (1..=255)".into()));
        }
        (Some(p), _) => p,
        (None, InitialState::Master) => 255,
        (None, InitialState::Backup) => 100,
    };
    let adver_int = if version == 2 {
        // keepalived takes 0.01..255 and rounds v2's to whole seconds.
        let s = seconds(c.advert_int, "advert_int", 0.01, 255.0)?;
        ((s + SEC / 2) / SEC).max(1) * SEC
    } else {
        let s = seconds(c.advert_int, "advert_int", 0.01, 40.95)?;
        s / 10_000 * 10_000
    };
    let password = match &c.authentication {
        None => None,
        Some(a) if a.kind.eq_ignore_ascii_case("pass") => {
            if version != 2 {
                return Err((
                    "authentication".into(),
                    "VRRPv3 has no authentication (keepalived drops it too)".into(),
                ));
            }
            let mut pw = [0u8; 8];
            let b = a.password.as_bytes();
            pw[..b.len().min(8)].copy_from_slice(&b[..b.len().min(8)]);
            Some(pw)
        }
        Some(a) => {
            return Err((
                "authentication.type".into(),
                format!("'{}' is not supported (PASS only; AH is not)", a.kind),
            ));
        }
    };
    for (i, p) in c.unicast_peer.iter().enumerate() {
        if p.is_ipv6() != v6 {
            return Err((
                format!("unicast_peer[{i}]"),
                "a peer of another family than the addresses".into(),
            ));
        }
    }
    if c.unicast_src_ip.is_some_and(|a| a.is_ipv6() != v6) {
        return Err((
            "unicast_src_ip".into(),
            "of another family than the addresses".into(),
        ));
    }
    // keepalived: nopreempt and preempt_delay do not apply to an owner or `state MASTER`.
    let owner_or_master = priority == 255 || c.state == InitialState::Master;
    let nopreempt = c.nopreempt && !owner_or_master;
    let preempt_delay = if owner_or_master || nopreempt {
        0
    } else {
        seconds(c.preempt_delay, "preempt_delay", 0.0, 1000.0)?
    };
    let garp_master_delay = seconds(c.garp_master_delay, "garp_master_delay", 0.0, 3600.0)?;
    let garp_master_refresh = seconds(c.garp_master_refresh, "garp_master_refresh", 0.0, 86_400.0)?;
    if c.garp_master_repeat > 255 || c.garp_master_refresh_repeat > 255 {
        return Err(("garp_master_repeat".into(), "at most 255 rounds".into()));
    }
    Ok(Params {
        name: c.name.clone(),
        vrid: c.vrid,
        version,
        priority,
        adver_int,
        password,
        vips: c.virtual_ipaddress.iter().map(|v| v.addr).collect(),
        unicast_peers: c.unicast_peer.clone(),
        nopreempt,
        preempt_delay,
        garp_master_delay,
        garp_master_repeat: c.garp_master_repeat.max(1),
        garp_master_refresh,
        garp_master_refresh_repeat: c.garp_master_refresh_repeat.max(1),
        // keepalived's defaults: the global master repeat and delay.
        garp_lower_prio_repeat: 5,
        garp_lower_prio_delay: 5 * SEC,
    })
}

/// Checks the whole section: each instance, unique names and (interface, VRID, family),
/// tracked scripts that exist, sync groups of existing instances, each in one group.
pub fn check(v: &VrrpConfig) -> Result<(), Problem> {
    let mut scripts = HashSet::new();
    for (i, s) in v.scripts.iter().enumerate() {
        let at = |f: &str| format!("scripts[{i}].{f}");
        if !scripts.insert(s.name.as_str()) {
            return Err((at("name"), format!("'{}' is defined twice", s.name)));
        }
        if s.script.trim().is_empty() {
            return Err((at("script"), "no command".into()));
        }
        seconds(s.interval, &at("interval"), 1.0, 86_400.0)?;
        if let Some(t) = s.timeout {
            seconds(t, &at("timeout"), 0.001, 86_400.0)?;
        }
        if !(-253..=253).contains(&s.weight) {
            return Err((at("weight"), format!("{} is outside -253..=253", s.weight)));
        }
        if s.rise == 0 || s.fall == 0 {
            return Err((at("rise"), "rise and fall are at least 1".into()));
        }
    }
    let mut names = HashSet::new();
    let mut routers = HashSet::new();
    for (i, c) in v.instances.iter().enumerate() {
        let fix = |(f, m): Problem| (format!("instances[{i}].{f}"), m);
        let p = params(c).map_err(fix)?;
        if !names.insert(c.name.as_str()) {
            return Err((
                format!("instances[{i}].name"),
                format!("'{}' is defined twice", c.name),
            ));
        }
        let v6 = p.vips[0].is_ipv6();
        if !routers.insert((c.interface.as_str(), c.vrid, v6)) {
            return Err((
                format!("instances[{i}].vrid"),
                format!(
                    "another instance is virtual router {} on {} already",
                    c.vrid, c.interface
                ),
            ));
        }
        for (k, t) in c.track_script.iter().enumerate() {
            if !scripts.contains(t.name.as_str()) {
                return Err((
                    format!("instances[{i}].track_script[{k}]"),
                    format!("no script named '{}' in vrrp.scripts", t.name),
                ));
            }
            if t.weight.is_some_and(|w| !(-253..=253).contains(&w)) {
                return Err((
                    format!("instances[{i}].track_script[{k}].weight"),
                    "outside -253..=253".into(),
                ));
            }
        }
        for (k, t) in c.track_interface.iter().enumerate() {
            if t.weight.is_some_and(|w| !(-253..=253).contains(&w)) {
                return Err((
                    format!("instances[{i}].track_interface[{k}].weight"),
                    "outside -253..=253".into(),
                ));
            }
        }
    }
    let mut grouped = HashSet::new();
    for (g, grp) in v.sync_groups.iter().enumerate() {
        if grp.group.is_empty() {
            return Err((format!("sync_groups[{g}].group"), "an empty group".into()));
        }
        for (k, name) in grp.group.iter().enumerate() {
            if !names.contains(name.as_str()) {
                return Err((
                    format!("sync_groups[{g}].group[{k}]"),
                    format!("no instance named '{name}'"),
                ));
            }
            if !grouped.insert(name.as_str()) {
                return Err((
                    format!("sync_groups[{g}].group[{k}]"),
                    format!("'{name}' is in another group already"),
                ));
            }
        }
    }
    Ok(())
}
