//! What the director publishes into the kernel, behind one trait: the network view it reads
//! (rtnetlink), neighbour resolution, the VIP addresses it manages and the XDP steering maps.
//! [`Live`] is the real one; tests drive the director with a stand-in that records calls.

use crate::ha::HeldAddr;
use crate::vips;
use std::net::IpAddr;
use xvs_core::service::ServiceTable;
use xvs_io::gate::QueueGate;
use xvs_io::netlink::{NetView, Netlink};
use xvs_io::steering::{Replace, SteerDrops, Steering, SteeringSets, SynBudget};
use xvs_io::vip_dev::VipDevice;
use xvs_io::xdp_loader::{SocketMap, XdpMode};

/// One interface's steering program as the statistics show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SteeringStatus {
    /// `native` or `generic`.
    pub mode: &'static str,
    /// Frames steered: to a VIP, to a local address of a FullNAT service, from a real server.
    pub steered: [u64; 3],
    /// Frames the program dropped, by reason.
    pub drops: SteerDrops,
}

/// The kernel side of the control plane.
pub trait Kernel {
    /// The network as last read.
    fn net(&self) -> &NetView;
    /// Reads the network again.
    fn refresh(&mut self) -> Result<(), String>;
    /// Asks the kernel to resolve a neighbour.
    fn resolve(&mut self, ifindex: u32, ip: IpAddr) -> Result<(), String>;
    /// Makes the managed VIP addresses those of `services` (nothing unless VIPs are managed).
    fn sync_vips(&mut self, services: &ServiceTable) -> Result<(), String>;
    /// Writes `sets` into every interface's steering maps.
    fn sync_steering(&mut self, sets: &SteeringSets) -> Result<(), String>;
    /// Each interface's steering program, in port order (`mode` "gone" while its interface
    /// is).
    fn steering_status(&self) -> Vec<SteeringStatus>;
    /// Port `port`'s interface is gone: its steering program is let go (the kernel detached
    /// it with the interface) and the VIP addresses xvsd had put on it are forgotten.
    fn detach_port(&mut self, port: usize, ifindex: u32);
    /// Port `port`'s interface is back as `ifname` with index `ifindex`: a steering program is
    /// attached to it, holding `sets`.
    fn attach_port(
        &mut self,
        port: usize,
        ifname: &str,
        ifindex: u32,
        sets: &SteeringSets,
    ) -> Result<(), String>;
    /// Points queue `queue` of port `port`'s steering program at AF_XDP socket `fd`.
    fn register_socket(&mut self, port: usize, queue: u32, fd: i32) -> Result<(), String>;
    /// Where the worker of queue `queue` tells port `port`'s program it is behind.
    fn gate(&self, port: usize, queue: u32) -> Option<QueueGate>;
    /// The kernel's id of port `port`'s steering program (`None`: it has none now).
    fn program_id(&self, port: usize) -> Option<u32>;
    /// Makes the addresses xvsd holds for VRRP masters exactly `want` (added, removed).
    fn sync_vrrp_addrs(&mut self, want: &[HeldAddr]) -> Result<(), String>;
    /// Renews the addresses that live only while renewed (once a second).
    fn renew_vrrp_addrs(&mut self) {}
    /// Makes the VIPs announced to the routing daemon exactly `want`: host addresses of the
    /// device that goes with xvsd, which BIRD's `direct` protocol turns into routes (withdrawn
    /// when an address goes, or the device with a crashed xvsd).
    fn sync_announced(&mut self, want: &[IpAddr]) -> Result<(), String>;
}

/// How steering programs are attached (kept to attach one again when its interface returns).
#[derive(Debug, Clone, Copy)]
pub struct Attach {
    /// Native, generic or automatic.
    pub mode: XdpMode,
    /// What may be replaced (`--force`: any program).
    pub replace: Replace,
    /// The new-connection budget per queue.
    pub syn_budget: SynBudget,
}

impl Attach {
    /// Attaches one interface's steering program.
    pub fn attach(&self, ifname: &str) -> Result<Steering, String> {
        let mut st =
            Steering::attach(ifname, self.mode, self.replace).map_err(|e| e.to_string())?;
        st.set_syn_budget(self.syn_budget)
            .map_err(|e| e.to_string())?;
        tracing::info!(interface = %ifname, mode = st.mode_name(), "XDP steering program attached");
        Ok(st)
    }
}

/// rtnetlink, the steering programs and the VIP addresses xvsd added.
pub struct Live {
    nl: Netlink,
    view: NetView,
    /// By port; `None` while the port's interface is gone.
    steering: Vec<Option<Steering>>,
    attach: Attach,
    /// Where managed VIPs go (`None`: VIPs are not managed).
    vip_ifindex: Option<u32>,
    managed: Vec<(u32, IpAddr)>,
    /// VRRP addresses added (interface index, address).
    vrrp: Vec<(u32, HeldAddr)>,
    /// The device holding IPv4 VRRP addresses and announced VIPs, and its index.
    vip_dev: Option<(VipDevice, u32)>,
    /// VIPs announced (on `vip_dev`).
    announced: Vec<IpAddr>,
}

/// Seconds an IPv6 VRRP address lives unless renewed (renewed every second while master).
const VRRP_V6_LIFETIME: u32 = 3;

impl Live {
    /// Opens rtnetlink and reads the network; `vip_ifindex` is where managed VIPs go.
    pub fn open(
        attach: Attach,
        vip_ifindex: impl FnOnce(&NetView) -> Result<Option<u32>, String>,
    ) -> Result<Live, String> {
        let mut nl = Netlink::open().map_err(|e| format!("cannot open a netlink socket: {e}"))?;
        let view = nl
            .view()
            .map_err(|e| format!("cannot read the network state: {e}"))?;
        let vip_ifindex = vip_ifindex(&view)?;
        Ok(Live {
            nl,
            view,
            steering: Vec::new(),
            attach,
            vip_ifindex,
            managed: Vec::new(),
            vrrp: Vec::new(),
            vip_dev: None,
            announced: Vec::new(),
        })
    }

    /// Attaches the next port's steering program (in port order).
    pub fn add_steering(&mut self, ifname: &str) -> Result<(), String> {
        let st = self.attach.attach(ifname)?;
        self.steering.push(Some(st));
        Ok(())
    }

    /// The steering programs, to register sockets in (port order).
    pub fn socket_maps(&mut self) -> Vec<&mut dyn SocketMap> {
        self.steering
            .iter_mut()
            .flatten()
            .map(|s| s as &mut dyn SocketMap)
            .collect()
    }
}

impl Kernel for Live {
    fn net(&self) -> &NetView {
        &self.view
    }

    fn refresh(&mut self) -> Result<(), String> {
        self.view = self
            .nl
            .view()
            .map_err(|e| format!("cannot read the network state: {e}"))?;
        Ok(())
    }

    fn resolve(&mut self, ifindex: u32, ip: IpAddr) -> Result<(), String> {
        self.nl.resolve(ifindex, ip).map_err(|e| e.to_string())
    }

    fn sync_vips(&mut self, services: &ServiceTable) -> Result<(), String> {
        let Some(ifindex) = self.vip_ifindex else {
            return Ok(());
        };
        let r = vips::sync(&mut self.nl, ifindex, services, &mut self.managed);
        // The addresses are part of the view (steering's local addresses): read it again
        // when they may have moved (a failed sync may have done part of its work).
        if !matches!(r, Ok(false)) {
            let _ = self.refresh();
        }
        r.map(drop)
    }

    fn sync_steering(&mut self, sets: &SteeringSets) -> Result<(), String> {
        for st in self.steering.iter_mut().flatten() {
            st.sync(sets).map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    fn steering_status(&self) -> Vec<SteeringStatus> {
        self.steering
            .iter()
            .map(|s| match s {
                Some(s) => SteeringStatus {
                    mode: s.mode_name(),
                    steered: s.steered(),
                    drops: s.drops(),
                },
                None => SteeringStatus {
                    mode: "gone",
                    ..SteeringStatus::default()
                },
            })
            .collect()
    }

    fn detach_port(&mut self, port: usize, ifindex: u32) {
        if let Some(s) = self.steering.get_mut(port) {
            *s = None;
        }
        // Its addresses went with it.
        self.managed.retain(|(ix, _)| *ix != ifindex);
    }

    fn attach_port(
        &mut self,
        port: usize,
        ifname: &str,
        ifindex: u32,
        sets: &SteeringSets,
    ) -> Result<(), String> {
        let slot = self
            .steering
            .get_mut(port)
            .ok_or_else(|| format!("port {port} is not served"))?;
        let mut st = self.attach.attach(ifname)?;
        st.sync(sets).map_err(|e| e.to_string())?;
        *slot = Some(st);
        if port == 0 && self.vip_ifindex.is_some() {
            // Managed VIPs live on the first served interface: on the new one from now on
            // (the next sync puts them back).
            self.vip_ifindex = Some(ifindex);
        }
        Ok(())
    }

    fn register_socket(&mut self, port: usize, queue: u32, fd: i32) -> Result<(), String> {
        match self.steering.get_mut(port) {
            Some(Some(st)) => st.register_socket(queue, fd).map_err(|e| e.to_string()),
            _ => Err(format!("port {port} has no steering program")),
        }
    }

    fn gate(&self, port: usize, queue: u32) -> Option<QueueGate> {
        self.steering.get(port)?.as_ref()?.gate(queue)
    }

    fn program_id(&self, port: usize) -> Option<u32> {
        self.steering.get(port)?.as_ref().map(Steering::program_id)
    }

    fn sync_vrrp_addrs(&mut self, want: &[HeldAddr]) -> Result<(), String> {
        let mut changed = false;
        let gone: Vec<(u32, HeldAddr)> = self
            .vrrp
            .iter()
            .filter(|(_, a)| !want.contains(a))
            .cloned()
            .collect();
        for (ix, a) in &gone {
            let prefix = if a.addr.is_ipv4() { 32 } else { a.prefix };
            match self.nl.remove_prefix(*ix, a.addr, prefix) {
                Ok(()) => tracing::info!(addr = %a.addr, dev = %a.dev, "VRRP address removed"),
                Err(e) => {
                    tracing::warn!(addr = %a.addr, dev = %a.dev, error = %e, "cannot remove a VRRP address");
                }
            }
            changed = true;
        }
        self.vrrp.retain(|x| !gone.contains(x));
        let mut err = None;
        for a in want {
            if self.vrrp.iter().any(|(_, x)| x == a) {
                continue;
            }
            let r = if a.addr.is_ipv4() {
                // On the device that goes with the process (see xvs_io::vip_dev), as a host
                // address: the host answers ARP for it on the served interface meanwhile.
                self.vip_device().and_then(|ix| {
                    self.nl
                        .add_prefix(ix, a.addr, 32)
                        .map(|_| ix)
                        .map_err(|e| e.to_string())
                })
            } else {
                // IPv6 neighbour discovery answers only on the address's own interface: there,
                // valid for a few seconds and renewed while master.
                match self
                    .view
                    .links
                    .iter()
                    .find(|l| l.name == a.dev)
                    .map(|l| l.index)
                {
                    Some(ix) => self
                        .nl
                        .add_prefix_for(ix, a.addr, a.prefix, VRRP_V6_LIFETIME)
                        .map(|()| ix)
                        .map_err(|e| e.to_string()),
                    None => Err(format!("no interface {}", a.dev)),
                }
            };
            match r {
                Ok(ix) => {
                    tracing::info!(addr = %a.addr, dev = %a.dev, "VRRP address added");
                    self.vrrp.push((ix, a.clone()));
                    changed = true;
                }
                Err(e) => err = Some(format!("cannot add VRRP address {}: {e}", a.addr)),
            }
        }
        if changed {
            let _ = self.refresh();
        }
        err.map_or(Ok(()), Err)
    }

    fn sync_announced(&mut self, want: &[IpAddr]) -> Result<(), String> {
        let gone: Vec<IpAddr> = self
            .announced
            .iter()
            .filter(|a| !want.contains(a))
            .copied()
            .collect();
        let mut changed = false;
        if let Some((_, ix)) = &self.vip_dev {
            let ix = *ix;
            for a in &gone {
                let prefix = if a.is_ipv4() { 32 } else { 128 };
                match self.nl.remove_prefix(ix, *a, prefix) {
                    Ok(()) => tracing::info!(vip = %a, "VIP withdrawn from the routers"),
                    Err(e) => tracing::warn!(vip = %a, error = %e, "cannot withdraw a VIP"),
                }
                changed = true;
            }
        }
        self.announced.retain(|a| want.contains(a));
        let mut err = None;
        for a in want {
            if self.announced.contains(a) {
                continue;
            }
            let prefix = if a.is_ipv4() { 32 } else { 128 };
            match self.vip_device().and_then(|ix| {
                self.nl
                    .add_prefix(ix, *a, prefix)
                    .map_err(|e| e.to_string())
            }) {
                Ok(_) => {
                    tracing::info!(vip = %a, "VIP announced to the routers");
                    self.announced.push(*a);
                    changed = true;
                }
                Err(e) => err = Some(format!("cannot announce VIP {a}: {e}")),
            }
        }
        if changed {
            let _ = self.refresh();
        }
        err.map_or(Ok(()), Err)
    }

    fn renew_vrrp_addrs(&mut self) {
        for (ix, a) in &self.vrrp {
            if a.addr.is_ipv6()
                && let Err(e) = self
                    .nl
                    .add_prefix_for(*ix, a.addr, a.prefix, VRRP_V6_LIFETIME)
            {
                tracing::warn!(addr = %a.addr, error = %e, "cannot renew a VRRP address");
            }
        }
    }
}

impl Live {
    /// The index of the device holding IPv4 VRRP addresses (made on first use).
    fn vip_device(&mut self) -> Result<u32, String> {
        if let Some((_, ix)) = &self.vip_dev {
            return Ok(*ix);
        }
        let dev = VipDevice::create("xvs-vip")
            .map_err(|e| format!("cannot create the VIP address device: {e}"))?;
        self.refresh()?;
        let ix = self
            .view
            .links
            .iter()
            .find(|l| l.name == dev.name())
            .map(|l| l.index)
            .ok_or_else(|| format!("{} is not in the network view", dev.name()))?;
        self.nl
            .set_up(ix)
            .map_err(|e| format!("cannot bring {} up: {e}", dev.name()))?;
        tracing::info!(
            device = dev.name(),
            "VIP addresses are held on a device that goes with xvsd"
        );
        self.vip_dev = Some((dev, ix));
        Ok(ix)
    }
}

impl Drop for Live {
    /// The VIP addresses xvsd added go with it, and those it holds for VRRP or announces.
    fn drop(&mut self) {
        let _ = self.sync_announced(&[]);
        vips::remove_all(&mut self.nl, &self.managed);
        for (ix, a) in std::mem::take(&mut self.vrrp) {
            let prefix = if a.addr.is_ipv4() { 32 } else { a.prefix };
            let _ = self.nl.remove_prefix(ix, a.addr, prefix);
        }
    }
}
