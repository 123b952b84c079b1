//! What the director publishes into the kernel, behind one trait: the network view it reads
//! (rtnetlink), neighbour resolution, the VIP addresses it manages and the XDP steering maps.
//! [`Live`] is the real one; tests drive the director with a stand-in that records calls.

use crate::vips;
use std::net::IpAddr;
use xvs_core::service::ServiceTable;
use xvs_io::netlink::{NetView, Netlink};
use xvs_io::steering::{SteerDrops, Steering, SteeringSets};

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
    /// Each interface's steering program, in port order.
    fn steering_status(&self) -> Vec<SteeringStatus>;
}

/// rtnetlink, the steering programs and the VIP addresses xvsd added.
pub struct Live {
    nl: Netlink,
    view: NetView,
    steering: Vec<Steering>,
    /// Where managed VIPs go (`None`: VIPs are not managed).
    vip_ifindex: Option<u32>,
    managed: Vec<(u32, IpAddr)>,
}

impl Live {
    /// Opens rtnetlink and reads the network; `vip_ifindex` is where managed VIPs go.
    pub fn open(
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
            vip_ifindex,
            managed: Vec::new(),
        })
    }

    /// Adds an interface's steering program (in port order).
    pub fn add_steering(&mut self, s: Steering) {
        self.steering.push(s);
    }

    /// The steering programs, to register sockets in.
    pub fn steering_mut(&mut self) -> &mut [Steering] {
        &mut self.steering
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
        for st in &mut self.steering {
            st.sync(sets).map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    fn steering_status(&self) -> Vec<SteeringStatus> {
        self.steering
            .iter()
            .map(|s| SteeringStatus {
                mode: s.mode_name(),
                steered: s.steered(),
                drops: s.drops(),
            })
            .collect()
    }
}

impl Drop for Live {
    /// The VIP addresses xvsd added go with it.
    fn drop(&mut self) {
        vips::remove_all(&mut self.nl, &self.managed);
    }
}
