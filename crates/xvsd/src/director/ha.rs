//! The director's side of high availability: a VRRP instance's mastership moves its addresses
//! and the steering of the services on them; connection sync rides on the expiry sweep
//! (export) and the control tick (install); the sync daemons follow the VRRP instance named
//! for them, or run as `xvsadm --start-daemon` asks.

use super::Director;
use crate::ha::HaEvent;
use crate::ha::sync::DaemonCfg;
use xvs_control::config::ha::SyncConfig;
use xvs_control::proto::{DaemonReply, DaemonSpec, VrrpReply};
use xvs_io::netlink::NetView;
use xvs_wire::ipvs_sync;

/// The daemon settings of `s` on the interfaces of `view`, defaults filled in.
pub fn daemon_cfg(s: &SyncConfig, view: &NetView) -> Result<DaemonCfg, String> {
    let link = view
        .links
        .iter()
        .find(|l| l.name == s.interface)
        .ok_or_else(|| format!("sync: no interface {}", s.interface))?;
    Ok(DaemonCfg {
        interface: s.interface.clone(),
        ifindex: link.index,
        syncid: s.director_id.unwrap_or(s.syncid),
        own_id: s.director_id.unwrap_or(0),
        // The master's default is 1500 − 28 whatever the MTU, as the kernel's.
        maxlen: s.maxlen.unwrap_or(ipvs_sync::MAX_LEN as u16),
        group: s
            .group
            .unwrap_or(std::net::IpAddr::from(ipvs_sync::GROUP_V4)),
        port: s.port.unwrap_or(ipvs_sync::PORT),
        ttl: s.ttl.unwrap_or(1),
    })
}

impl Director {
    /// Applies what the VRRP runner says: addresses, steering, sync roles; then answers.
    pub fn ha_event(&mut self, ev: HaEvent) {
        match ev {
            HaEvent::Mastership {
                instance,
                master,
                addrs,
                done,
            } => {
                if self.ha.set(&instance, master, addrs) {
                    // A new master steers the services before it holds their addresses, a
                    // backup lets go of the addresses before it stops steering: never is an
                    // address the host's while its service is not steered (a client that
                    // re-resolved the VIP in between would reach the host stack, which
                    // resets the connection).
                    if master {
                        self.sync_steering();
                    }
                    let held = self.ha.held_addrs();
                    if let Err(e) = self.kernel.sync_vrrp_addrs(&held) {
                        tracing::warn!(error = %e, "VRRP addresses");
                    }
                    if !master {
                        self.sync_steering();
                    }
                }
                self.follow_sync_role(&instance, master);
                if let Some(d) = done {
                    let _ = d.send(());
                }
            }
        }
    }

    /// keepalived's `lvs_sync_daemon IF INSTANCE`: master of the instance → the master
    /// daemon; otherwise the backup daemon.
    fn follow_sync_role(&mut self, instance: &str, master: bool) {
        let Some((name, cfg)) = self.ha.follow.clone() else {
            return;
        };
        if name != instance {
            return;
        }
        let (stop, start) = if master {
            ("backup", "master")
        } else {
            ("master", "backup")
        };
        if self.ha.sync.runs(stop).is_some() {
            let _ = self.ha.sync.stop(stop);
        }
        if self.ha.sync.runs(start).is_none() {
            let r = if master {
                self.ha.sync.start_master(cfg)
            } else {
                self.ha.sync.start_backup(cfg)
            };
            if let Err(e) = r {
                tracing::error!(error = %e, "sync daemon");
            }
        }
    }

    /// The expiry sweep of `count` shards from `first`; with a master sync daemon it also
    /// exports what the backups need. Then what the backup daemon received is installed.
    pub fn sweep(&mut self, first: usize, count: usize) {
        let snap = self.shared.snapshot.load();
        let now = self.shared.now();
        if self.ha.sync.sending() {
            let mut out = Vec::new();
            self.sweeper
                .sweep_export(&snap, first, count, now, self.ha.sync.refresh, &mut out);
            self.ha.sync.send(out);
        } else {
            self.sweeper.sweep(&snap, first, count, now);
        }
        let c = std::sync::Arc::clone(&self.ha.sync.counters);
        for batch in self.ha.sync.received() {
            for conn in batch {
                match self.sweeper.install_synced(&snap, &conn, now) {
                    Ok(()) => {
                        c.conns_installed
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    Err(r) => c.reject(r.label()),
                }
            }
        }
    }

    /// Renews the VRRP addresses that live only while renewed (once a second).
    pub fn renew_vrrp_addrs(&mut self) {
        self.kernel.renew_vrrp_addrs();
    }

    /// `xvsadm vrrp`.
    pub fn vrrp_status(&self) -> VrrpReply {
        VrrpReply {
            instances: self
                .ha
                .runner
                .as_ref()
                .map(|r| r.status())
                .unwrap_or_default(),
        }
    }

    /// `-L --daemon`.
    pub fn daemon_status(&self) -> DaemonReply {
        self.ha.sync.status()
    }

    /// `--start-daemon`.
    pub fn start_daemon(&mut self, spec: &DaemonSpec) -> Result<(), String> {
        let s = SyncConfig {
            interface: spec.interface.clone(),
            instance: None,
            role: None,
            syncid: spec.syncid,
            director_id: None,
            maxlen: (spec.maxlen != 0).then_some(spec.maxlen),
            group: spec.group,
            port: (spec.port != 0).then_some(spec.port),
            ttl: (spec.ttl != 0).then_some(spec.ttl),
            refresh: None,
        };
        let cfg = daemon_cfg(&s, self.kernel.net()).map_err(|_| "No such device".to_string())?;
        match spec.role.as_str() {
            "master" => self.ha.sync.start_master(cfg),
            "backup" => self.ha.sync.start_backup(cfg),
            r => Err(format!("illegal start-daemon parameter specified: {r}")),
        }
    }

    /// `--stop-daemon`.
    pub fn stop_daemon(&mut self, role: &str) -> Result<(), String> {
        self.ha.sync.stop(role)
    }
}

#[cfg(test)]
mod tests {
    use crate::director::testing;
    use crate::ha::state::HaState;
    use crate::ha::{HaEvent, HeldAddr};
    use xvs_control::config::ha::{VipConfig, VrrpConfig, VrrpInstanceConfig};

    fn instance() -> VrrpInstanceConfig {
        serde_yaml_ng::from_str(
            "{ name: VI_1, interface: ext0, vrid: 51, virtual_ipaddress: [ { addr: 198.18.0.10 } ] }",
        )
        .unwrap()
    }

    #[test]
    fn mastership_moves_the_addresses_and_the_steering() {
        let (mut d, k) = testing::director_serving();
        let vrrp = VrrpConfig {
            instances: vec![instance()],
            ..VrrpConfig::default()
        };
        assert_eq!(
            vrrp.instances[0].virtual_ipaddress[0],
            VipConfig {
                addr: "198.18.0.10".parse().unwrap(),
                prefix: None,
                dev: None
            }
        );
        d.ha = HaState::of(&vrrp);
        d.sync_steering();
        assert!(
            k.last_steering().unwrap().vips.is_empty(),
            "a backup steers nothing of VI_1"
        );
        let addr = HeldAddr {
            dev: "ext0".into(),
            addr: "198.18.0.10".parse().unwrap(),
            prefix: 32,
        };
        let (tx, rx) = crossbeam_channel::bounded(1);
        d.ha_event(HaEvent::Mastership {
            instance: "VI_1".into(),
            master: true,
            addrs: vec![addr.clone()],
            done: Some(tx),
        });
        rx.try_recv().expect("answered");
        assert_eq!(k.vrrp_addrs(), vec![addr.clone()]);
        assert_eq!(
            k.last_steering().unwrap().vips.len(),
            2,
            "the service and its ICMP"
        );
        d.ha_event(HaEvent::Mastership {
            instance: "VI_1".into(),
            master: false,
            addrs: vec![addr],
            done: None,
        });
        assert!(k.vrrp_addrs().is_empty());
        assert!(k.last_steering().unwrap().vips.is_empty());
    }
}
