//! The XDP steering program: attached to an interface (see [`crate::xdp_prog`]), its maps kept
//! in step with the services, detached when dropped.

use crate::xdp_prog::{SocketMap, XdpProgram, percpu_sum, update};
use std::collections::HashSet;
use std::io;
use std::os::raw::c_void;

pub use crate::xdp_prog::{BpfError, XdpMode, detach_any};

/// The compiled steering program.
static OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/steer.o"));

/// Key of `vip_map` and `rip_map`: address (16-byte form), port (host order), protocol.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SvcKey {
    /// Address, IPv4 in IPv4-mapped form.
    pub addr: [u8; 16],
    /// Port (0 = any).
    pub port: u16,
    /// IP protocol.
    pub proto: u8,
    /// Padding, zero.
    pub pad: u8,
}

/// The maps the program steers by.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SteeringSets {
    /// Virtual services (and (VIP, 0, ICMP) for ICMP to a VIP).
    pub vips: HashSet<SvcKey>,
    /// NAT real servers (and (RIP, 0, ICMP)).
    pub rips: HashSet<SvcKey>,
    /// FullNAT local addresses.
    pub laddrs: HashSet<[u8; 16]>,
    /// The director's own addresses.
    pub locals: HashSet<[u8; 16]>,
}

/// The steering program, loaded and attached to one interface.
#[derive(Debug)]
pub struct Steering {
    prog: XdpProgram,
    xsks_fd: i32,
    vip_fd: i32,
    rip_fd: i32,
    laddr_fd: i32,
    local_fd: i32,
    stats_fd: i32,
    current: SteeringSets,
}

impl Steering {
    /// Loads the program and attaches it to `ifname` in `mode`.
    pub fn attach(ifname: &str, mode: XdpMode) -> Result<Steering, BpfError> {
        let prog = XdpProgram::attach(OBJECT, c"xvs_steer", "steering program", ifname, mode)?;
        Ok(Steering {
            xsks_fd: prog.map_fd(c"xsks_map")?,
            vip_fd: prog.map_fd(c"vip_map")?,
            rip_fd: prog.map_fd(c"rip_map")?,
            laddr_fd: prog.map_fd(c"laddr_map")?,
            local_fd: prog.map_fd(c"local_map")?,
            stats_fd: prog.map_fd(c"steer_stats")?,
            prog,
            current: SteeringSets::default(),
        })
    }

    /// The interface index.
    pub fn ifindex(&self) -> i32 {
        self.prog.ifindex()
    }

    /// The mode the program was attached in ("native" or "generic").
    pub fn mode_name(&self) -> &'static str {
        if self.prog.is_native() {
            "native"
        } else {
            "generic"
        }
    }

    /// True if attached in native (driver) mode.
    pub fn is_native(&self) -> bool {
        self.prog.is_native()
    }

    /// The configured mode.
    pub fn requested_mode(&self) -> XdpMode {
        self.prog.requested_mode()
    }

    /// Brings the maps in line with `want` (inserting and deleting the difference).
    pub fn sync(&mut self, want: &SteeringSets) -> Result<(), BpfError> {
        let one = 1u32;
        let map_err = |e: io::Error| BpfError {
            what: "updating the steering maps".into(),
            err: e,
        };
        sync_set(self.vip_fd, &self.current.vips, &want.vips, &one).map_err(map_err)?;
        sync_set(self.rip_fd, &self.current.rips, &want.rips, &one).map_err(map_err)?;
        sync_set(self.laddr_fd, &self.current.laddrs, &want.laddrs, &one).map_err(map_err)?;
        sync_set(self.local_fd, &self.current.locals, &want.locals, &one).map_err(map_err)?;
        self.current = want.clone();
        Ok(())
    }

    /// Packets steered so far, by rule: to a service, to a local address, from a real server.
    pub fn steered(&self) -> [u64; 3] {
        [0, 1, 2].map(|rule| percpu_sum(self.stats_fd, rule))
    }
}

fn sync_set<K: Eq + std::hash::Hash>(
    fd: i32,
    have: &HashSet<K>,
    want: &HashSet<K>,
    value: &u32,
) -> io::Result<()> {
    for k in want.difference(have) {
        update(fd, k, value)?;
    }
    for k in have.difference(want) {
        // SAFETY: `k` points to an initialised key of the map's key size.
        let rc = unsafe { libbpf_sys::bpf_map_delete_elem(fd, (k as *const K).cast::<c_void>()) };
        if rc != 0 && rc != -libc::ENOENT {
            return Err(io::Error::from_raw_os_error(-rc));
        }
    }
    Ok(())
}

impl SocketMap for Steering {
    fn register_socket(&mut self, queue: u32, xsk_fd: i32) -> Result<(), BpfError> {
        self.prog.register_socket(self.xsks_fd, queue, xsk_fd)
    }
}
