//! The service table the workers read: services and real servers indexed for lookup.

use super::{Family, MarkRule, RealServer, Service, ServiceKey, addr16};
use crate::{RealId, ServiceId};
use core::net::IpAddr;
use rustc_hash::{FxHashMap, FxHashSet};

/// The virtual services and real servers, indexed for the forwarder.
///
/// Cheap to clone relative to how often configuration changes; the control plane clones,
/// mutates and publishes a new one.
#[derive(Debug, Clone)]
pub struct ServiceTable {
    pub(super) services: Vec<Option<Service>>,
    pub(super) reals: Vec<Option<RealServer>>,
    pub(super) by_addr: FxHashMap<(u8, [u8; 16], u16), ServiceId>,
    pub(super) by_mark: FxHashMap<(u32, Family), ServiceId>,
    pub(super) mark_rules: Vec<MarkRule>,
    pub(super) vips: FxHashSet<[u8; 16]>,
    pub(super) max_services: usize,
    pub(super) max_reals: usize,
    pub(super) next_version: u64,
}

impl ServiceTable {
    /// An empty table able to hold `max_services` services and `max_reals` real servers
    /// (counter arrays are sized from these).
    pub fn new(max_services: usize, max_reals: usize) -> Self {
        ServiceTable {
            services: Vec::new(),
            reals: Vec::new(),
            by_addr: FxHashMap::default(),
            by_mark: FxHashMap::default(),
            mark_rules: Vec::new(),
            vips: FxHashSet::default(),
            max_services: max_services.min(usize::from(ServiceId::MAX)),
            max_reals,
            next_version: 1,
        }
    }

    /// Capacity for services.
    pub const fn max_services(&self) -> usize {
        self.max_services
    }

    /// Capacity for real servers.
    pub const fn max_reals(&self) -> usize {
        self.max_reals
    }

    /// A service by index.
    #[inline]
    pub fn service(&self, id: ServiceId) -> Option<&Service> {
        self.services.get(usize::from(id)).and_then(Option::as_ref)
    }

    /// A real server by index (removed ones included).
    #[inline]
    pub fn real(&self, id: RealId) -> Option<&RealServer> {
        self.reals.get(id as usize).and_then(Option::as_ref)
    }

    /// All live services in index order.
    pub fn services(&self) -> impl Iterator<Item = &Service> {
        self.services.iter().flatten()
    }

    /// All real servers (removed ones included) in index order.
    pub fn reals(&self) -> impl Iterator<Item = &RealServer> {
        self.reals.iter().flatten()
    }

    /// Number of real-server slots in use (the forwarder sizes per-real arrays from this).
    pub fn real_slots(&self) -> usize {
        self.reals.len()
    }

    /// Every real server that belongs or belonged to a service (removed ones included): the
    /// service's counters are the sums over these.
    pub fn reals_of(&self, svc: ServiceId) -> impl Iterator<Item = RealId> + '_ {
        self.reals
            .iter()
            .flatten()
            .filter(move |r| r.service == svc)
            .map(|r| r.id)
    }

    /// The firewall-mark rules, in match order.
    pub fn mark_rules(&self) -> &[MarkRule] {
        &self.mark_rules
    }

    /// True if `addr` (16-byte form) is the address of any address-based service or mark rule
    /// host address.
    #[inline]
    pub fn is_vip(&self, addr: &[u8; 16]) -> bool {
        self.vips.contains(addr)
    }

    /// The service a packet belongs to: mark rules first, then (proto, VIP, port), then the
    /// port-less service (proto, VIP, 0).
    pub fn lookup(
        &self,
        family: Family,
        proto: u8,
        dst: &[u8; 16],
        dport: u16,
    ) -> Option<&Service> {
        if !self.mark_rules.is_empty() {
            if let Some(r) = self
                .mark_rules
                .iter()
                .find(|r| r.matches(family, proto, dst, dport))
            {
                if let Some(&id) = self.by_mark.get(&(r.mark, family)) {
                    return self.service(id).filter(|s| !s.down);
                }
            }
        }
        let id = self
            .by_addr
            .get(&(proto, *dst, dport))
            .or_else(|| self.by_addr.get(&(proto, *dst, 0)))?;
        self.service(*id).filter(|s| !s.down)
    }

    /// The service with this key.
    pub fn find(&self, key: &ServiceKey) -> Option<&Service> {
        let id = match key {
            // Keyed as IPv4 inside, a mapped address would find the IPv4 service.
            ServiceKey::Addr { addr, .. } if super::is_v4_mapped(addr) => return None,
            ServiceKey::Addr { proto, addr, port } => {
                self.by_addr.get(&(proto.number(), addr16(addr), *port))?
            }
            ServiceKey::Fwmark { mark, family } => self.by_mark.get(&(*mark, *family))?,
        };
        self.service(*id)
    }

    /// The live real server `addr:port` of a service.
    pub fn find_real(&self, svc: &Service, addr: &IpAddr, port: u16) -> Option<&RealServer> {
        svc.reals
            .iter()
            .filter_map(|&r| self.real(r))
            .find(|r| r.addr == *addr && r.port == port)
    }
}
