//! A director over a stand-in kernel, for unit tests of the director, its views and the
//! control loop: one served port, a network with one on-link prefix and no neighbours.

use super::kernel::{Kernel, SteeringStatus};
use super::{Director, Shared};
use crate::netsync::{self, Ports};
use arc_swap::ArcSwap;
use std::cell::RefCell;
use std::net::IpAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;
use xvs_control::change::{Change, Key, RealSpec, ServiceSpec};
use xvs_core::conn::{ConnTable, Timeouts};
use xvs_core::service::ServiceTable;
use xvs_core::stats::Stats;
use xvs_core::{Options, Snapshot};
use xvs_io::netlink::{Addr, Link, NetView, Route};
use xvs_io::steering::SteeringSets;

/// The stand-in port's interface index.
pub const IFINDEX: u32 = 7;

/// What the stand-in kernel was asked to do.
#[derive(Default)]
pub struct Calls {
    /// Neighbour resolutions, in order.
    pub resolved: Vec<(u32, IpAddr)>,
    /// Network re-reads.
    pub refreshes: usize,
    /// Steering sets written, in order.
    pub steering: Vec<SteeringSets>,
    /// VIP syncs (the number of services each time).
    pub vip_syncs: Vec<usize>,
    /// The network the next re-read finds (`None`: as it was).
    pub next_view: Option<NetView>,
    /// Ports let go (port, interface index).
    pub detached: Vec<(usize, u32)>,
    /// Ports attached again (port, name, interface index, the sets written).
    pub attached: Vec<(usize, String, u32, SteeringSets)>,
    /// The VRRP addresses held, as last set.
    pub vrrp_addrs: Vec<crate::ha::HeldAddr>,
    /// The VIPs announced last.
    pub announced: Vec<IpAddr>,
}

/// A handle on the calls the director's kernel received.
#[derive(Clone, Default)]
pub struct Recorder(Rc<RefCell<Calls>>);

impl Recorder {
    /// Neighbour resolutions so far.
    pub fn resolved(&self) -> Vec<(u32, IpAddr)> {
        self.0.borrow().resolved.clone()
    }
    /// Network re-reads so far.
    pub fn refreshes(&self) -> usize {
        self.0.borrow().refreshes
    }
    /// The last steering sets written.
    pub fn last_steering(&self) -> Option<SteeringSets> {
        self.0.borrow().steering.last().cloned()
    }
    /// VIP syncs so far.
    pub fn vip_syncs(&self) -> usize {
        self.0.borrow().vip_syncs.len()
    }
    /// The VRRP addresses held, as last set.
    pub fn announced(&self) -> Vec<IpAddr> {
        self.0.borrow().announced.clone()
    }

    pub fn vrrp_addrs(&self) -> Vec<crate::ha::HeldAddr> {
        self.0.borrow().vrrp_addrs.clone()
    }
    /// Makes the next network re-read find `view`.
    pub fn set_view(&self, view: NetView) {
        self.0.borrow_mut().next_view = Some(view);
    }
    /// Ports let go so far.
    pub fn detached(&self) -> Vec<(usize, u32)> {
        self.0.borrow().detached.clone()
    }
    /// Ports attached again so far (port, name, interface index, sets written).
    pub fn attached(&self) -> Vec<(usize, String, u32, SteeringSets)> {
        self.0.borrow().attached.clone()
    }
}

struct Stand {
    view: NetView,
    calls: Recorder,
}

impl Kernel for Stand {
    fn net(&self) -> &NetView {
        &self.view
    }
    fn refresh(&mut self) -> Result<(), String> {
        let mut c = self.calls.0.borrow_mut();
        c.refreshes += 1;
        if let Some(v) = c.next_view.take() {
            self.view = v;
        }
        Ok(())
    }
    fn resolve(&mut self, ifindex: u32, ip: IpAddr) -> Result<(), String> {
        self.calls.0.borrow_mut().resolved.push((ifindex, ip));
        Ok(())
    }
    fn sync_vips(&mut self, services: &ServiceTable) -> Result<(), String> {
        let n = services.services().count();
        self.calls.0.borrow_mut().vip_syncs.push(n);
        Ok(())
    }
    fn sync_steering(&mut self, sets: &SteeringSets) -> Result<(), String> {
        self.calls.0.borrow_mut().steering.push(sets.clone());
        Ok(())
    }
    fn steering_status(&self) -> Vec<SteeringStatus> {
        vec![SteeringStatus {
            mode: "native",
            ..SteeringStatus::default()
        }]
    }
    fn detach_port(&mut self, port: usize, ifindex: u32) {
        self.calls.0.borrow_mut().detached.push((port, ifindex));
    }
    fn attach_port(
        &mut self,
        port: usize,
        ifname: &str,
        ifindex: u32,
        sets: &SteeringSets,
    ) -> Result<(), String> {
        self.calls
            .0
            .borrow_mut()
            .attached
            .push((port, ifname.into(), ifindex, sets.clone()));
        Ok(())
    }
    fn register_socket(&mut self, _port: usize, _queue: u32, _fd: i32) -> Result<(), String> {
        Ok(())
    }
    fn gate(&self, _port: usize, _queue: u32) -> Option<xvs_io::gate::QueueGate> {
        None
    }
    fn program_id(&self, _port: usize) -> Option<u32> {
        // What the stand-in view's links show attached.
        Some(0)
    }
    fn sync_vrrp_addrs(&mut self, want: &[crate::ha::HeldAddr]) -> Result<(), String> {
        self.calls.0.borrow_mut().vrrp_addrs = want.to_vec();
        Ok(())
    }
    fn sync_announced(&mut self, want: &[IpAddr]) -> Result<(), String> {
        self.calls.0.borrow_mut().announced = want.to_vec();
        Ok(())
    }
}

/// The stand-in network: `ext0` with 198.18.0.2/24 and 198.18.1.1/24, no neighbours.
pub fn view() -> NetView {
    let addr = |a: &str| Addr {
        ifindex: IFINDEX,
        addr: a.parse().unwrap(),
        prefix_len: 24,
    };
    let route = |a: &str| Route {
        dst: a.parse().unwrap(),
        prefix_len: 24,
        oif: IFINDEX,
        gateway: None,
    };
    NetView {
        links: vec![Link {
            index: IFINDEX,
            name: "ext0".into(),
            mac: vec![2, 0, 0, 0, 0, 1],
            mtu: 1500,
            up: true,
            carrier: true,
            xdp_prog: 0,
        }],
        addrs: vec![addr("198.18.0.2"), addr("198.18.1.1")],
        routes: vec![route("198.18.0.0"), route("198.18.1.0")],
        neighbours: Vec::new(),
    }
}

/// A director with no services over the stand-in kernel, and the handle on its calls.
pub fn director() -> (Director, Recorder) {
    let view = view();
    let ports = Ports::find(&["ext0".to_string()], &view).unwrap();
    let services = Arc::new(ServiceTable::new(16, 64));
    let net = Arc::new(netsync::net_state(&ports, &view));
    let snapshot = Arc::new(ArcSwap::from_pointee(Snapshot::new(
        Arc::clone(&services),
        net,
        Timeouts::default(),
        Options::default(),
        1,
    )));
    let shared = Shared {
        snapshot,
        stats: Arc::new(Stats::new(1, services.max_reals())),
        table: Arc::new(ConnTable::new(1024, 1)),
        io: Vec::new(),
        ports,
        clock: Instant::now(),
        polling: vec![crate::polling::InterfacePolling {
            ifname: "ext0".into(),
            mechanism: crate::polling::Mechanism::Busy,
            detail: "stand-in".into(),
        }],
    };
    let calls = Recorder::default();
    let kernel = Stand {
        view,
        calls: calls.clone(),
    };
    let d = Director::new(
        shared,
        Box::new(kernel),
        SteeringSets::default(),
        &Vec::new(),
        None,
        crate::relink::Relink::without_workers(1),
    );
    (d, calls)
}

/// A director over the stand-in kernel serving TCP 198.18.0.10:80 with one DR real server,
/// 198.18.1.11:80.
pub fn director_serving() -> (Director, Recorder) {
    let (mut d, k) = director();
    d.apply(&service_with_real("198.18.1.11"), "test")
        .expect("the stand-in service");
    (d, k)
}

/// `-A -t 198.18.0.10:80` (wlc) and `-a … -r RIP:80 -g`.
pub fn service_with_real(rip: &str) -> Vec<Change> {
    let service: Key = "tcp 198.18.0.10:80".parse().unwrap();
    vec![
        Change::AddService {
            service,
            spec: ServiceSpec::default(),
        },
        Change::AddReal {
            service,
            real: RealSpec {
                addr: rip.parse().unwrap(),
                port: Some(80),
                method: Default::default(),
                weight: 1,
                u_threshold: 0,
                l_threshold: 0,
                tunnel: Default::default(),
            },
        },
    ]
}
