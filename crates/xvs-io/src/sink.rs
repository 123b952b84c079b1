//! The benchmark sink's XDP program (xdp/sink.c): counts and drops every non-ICMP IP packet
//! arriving on an interface, or hands it to an AF_XDP socket so its timestamp can be read.
//! ARP, neighbour discovery and ICMP pass to the host stack.

use crate::map::Map;
use crate::xdp_loader::{BpfError, Replace, SocketMap, XdpMode, XdpProgram};

/// The compiled sink program.
static OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/sink.o"));

/// The sink's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SinkCounts {
    /// Packets.
    pub packets: u64,
    /// Bytes.
    pub bytes: u64,
    /// UDP packets (by the outermost IP header).
    pub udp: u64,
    /// TCP packets (by the outermost IP header).
    pub tcp: u64,
}

impl std::ops::Sub for SinkCounts {
    type Output = SinkCounts;
    fn sub(self, o: SinkCounts) -> SinkCounts {
        SinkCounts {
            packets: self.packets.wrapping_sub(o.packets),
            bytes: self.bytes.wrapping_sub(o.bytes),
            udp: self.udp.wrapping_sub(o.udp),
            tcp: self.tcp.wrapping_sub(o.tcp),
        }
    }
}

/// The sink program attached to one interface.
#[derive(Debug)]
pub struct Sink {
    prog: XdpProgram,
    xsks: Map,
    cfg: Map,
    stats: Map,
}

impl Sink {
    /// Loads the program and attaches it to `ifname` in `mode`; it counts and drops.
    pub fn attach(ifname: &str, mode: XdpMode) -> Result<Sink, BpfError> {
        let prog = XdpProgram::attach(
            OBJECT,
            c"xvs_sink",
            "sink program",
            ifname,
            mode,
            Replace::OursOnly,
        )?;
        Ok(Sink {
            xsks: prog.map(c"sink_xsks")?,
            cfg: prog.map(c"sink_cfg")?,
            stats: prog.map(c"sink_stats")?,
            prog,
        })
    }

    /// What was counted since the program was attached.
    pub fn counts(&self) -> SinkCounts {
        let [packets, bytes, udp, tcp] = [0, 1, 2, 3].map(|k| self.stats.percpu_sum(k));
        SinkCounts {
            packets,
            bytes,
            udp,
            tcp,
        }
    }

    /// From now on, counted packets go to the registered AF_XDP sockets instead of being
    /// dropped (those of a queue without a socket are dropped).
    pub fn redirect_to_sockets(&mut self) -> Result<(), BpfError> {
        self.cfg.update(&0u32, &1u32).map_err(|e| BpfError {
            what: format!("switching the sink on {} to AF_XDP", self.prog.ifname()),
            err: e,
        })
    }
}

impl SocketMap for Sink {
    fn register_socket(&mut self, queue: u32, xsk_fd: i32) -> Result<(), BpfError> {
        self.prog.register_socket(self.xsks, queue, xsk_fd)
    }
}
