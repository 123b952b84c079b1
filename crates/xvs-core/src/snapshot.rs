//! One immutable view of everything the workers need: services, network state, timeouts and
//! options, with each real server's next hop resolved in advance. The control plane publishes a
//! new snapshot for every change; workers pick it up between batches.

use crate::RealId;
use crate::conn::Timeouts;
use crate::net::{NetState, Resolve};
use crate::service::ServiceTable;
use std::sync::Arc;

/// Switches that change forwarding behaviour (IPVS sysctls and xvs options).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Drop connections whose real server was removed instead of letting them finish
    /// (IPVS's `expire_nodest_conn`).
    pub expire_nodest_conn: bool,
    /// Answer ICMP echo requests to virtual IPs.
    pub answer_echo: bool,
    /// Verify IPv4 header checksums of packets that create connections.
    pub verify_ipv4_checksum: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            expire_nodest_conn: false,
            answer_echo: true,
            verify_ipv4_checksum: true,
        }
    }
}

/// Everything a worker reads, immutable once published.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Virtual services and real servers.
    pub services: Arc<ServiceTable>,
    /// Ports, routes, neighbours.
    pub net: Arc<NetState>,
    /// Connection timeouts.
    pub timeouts: Timeouts,
    /// Behaviour switches.
    pub options: Options,
    /// Increases with every publication.
    pub generation: u64,
    real_hops: Vec<Resolve>,
}

impl Snapshot {
    /// Builds a snapshot, resolving every real server's next hop.
    pub fn new(
        services: Arc<ServiceTable>,
        net: Arc<NetState>,
        timeouts: Timeouts,
        options: Options,
        generation: u64,
    ) -> Snapshot {
        let real_hops = (0..services.real_slots())
            .map(|i| match services.real(i as RealId) {
                Some(r) => net.resolve(&r.addr16()),
                None => Resolve::NoRoute,
            })
            .collect();
        Snapshot {
            services,
            net,
            timeouts,
            options,
            generation,
            real_hops,
        }
    }

    /// The pre-resolved next hop of a real server.
    #[inline(always)]
    pub fn real_hop(&self, id: RealId) -> Resolve {
        self.real_hops
            .get(id as usize)
            .copied()
            .unwrap_or(Resolve::NoRoute)
    }
}
