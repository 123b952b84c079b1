//! What the control thread knows of high availability: which VRRP instances are master now
//! (their addresses are held, the services on them steered) and which are not (their
//! addresses off the interfaces, their services left alone, as a backup director's), the VRRP
//! runner, and the sync daemons.

use super::HeldAddr;
use super::sync::Daemons;
use super::vrrp::VrrpRunner;
use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;
use xvs_control::config::ha::VrrpConfig;

/// High availability as the control thread holds it.
#[derive(Default)]
pub struct HaState {
    /// The VRRP runner, if instances are configured.
    pub runner: Option<VrrpRunner>,
    /// Per instance: master now, and its addresses.
    held: BTreeMap<String, (bool, Vec<HeldAddr>)>,
    /// The connection-sync daemons.
    pub sync: Daemons,
    /// The VRRP instance whose state the sync daemons follow, with their settings.
    pub follow: Option<(String, super::sync::DaemonCfg)>,
}

impl HaState {
    /// The instances of `cfg`, none master yet (every instance starts as backup).
    pub fn of(cfg: &VrrpConfig) -> HaState {
        let mut h = HaState::default();
        for i in &cfg.instances {
            let addrs = i
                .virtual_ipaddress
                .iter()
                .map(|v| HeldAddr {
                    dev: v.dev.clone().unwrap_or_else(|| i.interface.clone()),
                    addr: v.addr,
                    prefix: v.prefix.unwrap_or(if v.addr.is_ipv4() { 32 } else { 128 }),
                })
                .collect();
            h.held.insert(i.name.clone(), (false, addrs));
        }
        h
    }

    /// Records that `instance` is master (or not) now; true if that changed anything.
    pub fn set(&mut self, instance: &str, master: bool, addrs: Vec<HeldAddr>) -> bool {
        let e = self
            .held
            .entry(instance.to_string())
            .or_insert((false, Vec::new()));
        let changed = e.0 != master || e.1 != addrs;
        *e = (master, addrs);
        changed
    }

    /// The addresses of instances that are master: on the interfaces now.
    pub fn held_addrs(&self) -> Vec<HeldAddr> {
        let mut v: Vec<HeldAddr> = self
            .held
            .values()
            .filter(|h| h.0)
            .flat_map(|h| h.1.iter().cloned())
            .collect();
        v.sort_by_key(|a| (a.dev.clone(), a.addr, a.prefix));
        v.dedup();
        v
    }

    /// Addresses of instances that are not master (and of no master instance): services on
    /// them are not steered.
    pub fn inactive(&self) -> HashSet<IpAddr> {
        let active: HashSet<IpAddr> = self.held_addrs().iter().map(|a| a.addr).collect();
        self.held
            .values()
            .filter(|h| !h.0)
            .flat_map(|h| h.1.iter().map(|a| a.addr))
            .filter(|a| !active.contains(a))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(a: &str) -> HeldAddr {
        HeldAddr {
            dev: "ext0".into(),
            addr: a.parse().unwrap(),
            prefix: 32,
        }
    }

    #[test]
    fn addresses_of_masters_are_held_the_others_left_alone() {
        let mut h = HaState::default();
        h.set("VI_1", false, vec![addr("198.18.0.10")]);
        h.set("VI_2", false, vec![addr("198.18.0.20")]);
        assert!(h.held_addrs().is_empty());
        assert_eq!(h.inactive().len(), 2);
        assert!(h.set("VI_1", true, vec![addr("198.18.0.10")]));
        assert!(!h.set("VI_1", true, vec![addr("198.18.0.10")]), "no change");
        assert_eq!(h.held_addrs(), vec![addr("198.18.0.10")]);
        assert_eq!(
            h.inactive(),
            HashSet::from(["198.18.0.20".parse::<IpAddr>().unwrap()])
        );
    }
}
