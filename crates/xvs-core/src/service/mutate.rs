//! The checked mutations of the service table (ipvsadm's -A/-E/-D/-a/-e/-d and the
//! control plane's health, sorry-server and mark-rule updates).

use super::*;
use crate::{RealId, ServiceId};
use core::net::IpAddr;
use rustc_hash::FxHashSet;

impl ServiceTable {
    fn bump(&mut self) -> u64 {
        self.next_version += 1;
        self.next_version
    }

    /// The service and the live real server `addr:port` of service `key`.
    fn destination(
        &self,
        key: &ServiceKey,
        addr: IpAddr,
        port: u16,
    ) -> Result<(ServiceId, RealId), ConfigError> {
        let svc = self.find(key).ok_or(ConfigError::NoSuchService(*key))?;
        let real = self
            .find_real(svc, &addr, port)
            .ok_or(ConfigError::NoSuchDestination(addr, port))?;
        Ok((svc.id, real.id))
    }

    /// Gives service `sid` a new version (its workers rebuild their scheduler) after `change`.
    fn new_version(&mut self, sid: ServiceId, change: impl FnOnce(&mut Service)) {
        let version = self.bump();
        if let Some(svc) = self.services[usize::from(sid)].as_mut() {
            change(svc);
            svc.version = version;
        }
    }

    fn validate_options(key: &ServiceKey, o: &ServiceOptions) -> Result<(), ConfigError> {
        if !is_scheduler(&o.scheduler) {
            return Err(ConfigError::UnknownScheduler(o.scheduler.clone()));
        }
        if let Some(p) = o.persistence {
            let max = match key.family() {
                Family::V4 => 32,
                Family::V6 => 128,
            };
            if u32::from(p.prefix_len) > max {
                return Err(ConfigError::OutOfRange {
                    what: "persistence netmask",
                    value: u64::from(p.prefix_len),
                    max: u64::from(max),
                });
            }
        }
        if o.one_packet
            && !matches!(
                key,
                ServiceKey::Addr {
                    proto: Protocol::Udp,
                    ..
                }
            )
        {
            // ipvsadm accepts -o anywhere but IPVS applies it to UDP only; say so.
            if matches!(key, ServiceKey::Addr { .. }) {
                return Err(ConfigError::Invalid(
                    "one-packet scheduling (-o) applies to UDP services only".into(),
                ));
            }
        }
        for a in &o.local_addrs {
            refuse_v4_mapped("local address", a)?;
            if Family::of(a) != key.family() {
                return Err(ConfigError::Invalid(format!(
                    "local address {a} is not of the service's address family"
                )));
            }
        }
        Ok(())
    }

    /// Adds a virtual service (`-A`).
    pub fn add_service(
        &mut self,
        key: ServiceKey,
        options: ServiceOptions,
    ) -> Result<ServiceId, ConfigError> {
        if let ServiceKey::Addr { addr, .. } = &key {
            refuse_v4_mapped("virtual address", addr)?;
        }
        if self.find(&key).is_some() {
            return Err(ConfigError::ServiceExists(key));
        }
        Self::validate_options(&key, &options)?;
        let slot = match self.services.iter().position(Option::is_none) {
            Some(i) => i,
            None if self.services.len() < self.max_services => {
                self.services.push(None);
                self.services.len() - 1
            }
            None => return Err(ConfigError::TableFull("virtual services")),
        };
        let id = slot as ServiceId;
        let version = self.bump();
        match key {
            ServiceKey::Addr { proto, addr, port } => {
                self.by_addr
                    .insert((proto.number(), addr16(&addr), port), id);
            }
            ServiceKey::Fwmark { mark, family } => {
                self.by_mark.insert((mark, family), id);
            }
        }
        self.services[slot] = Some(Service {
            id,
            key,
            options,
            reals: Vec::new(),
            version,
            sorry: None,
            down: false,
        });
        self.rebuild_vips();
        Ok(id)
    }

    /// Changes a service's options (`-E`); its real servers stay.
    pub fn edit_service(
        &mut self,
        key: &ServiceKey,
        options: ServiceOptions,
    ) -> Result<(), ConfigError> {
        Self::validate_options(key, &options)?;
        let id = self.find(key).ok_or(ConfigError::NoSuchService(*key))?.id;
        let version = self.bump();
        let svc = self.services[usize::from(id)]
            .as_mut()
            .ok_or(ConfigError::NoSuchService(*key))?;
        svc.options = options;
        svc.version = version;
        Ok(())
    }

    /// Deletes a service (`-D`). Its real servers are marked removed so that existing
    /// connections finish, as IPVS keeps them in its trash.
    pub fn remove_service(&mut self, key: &ServiceKey) -> Result<(), ConfigError> {
        let id = self.find(key).ok_or(ConfigError::NoSuchService(*key))?.id;
        let svc = self.services[usize::from(id)]
            .take()
            .ok_or(ConfigError::NoSuchService(*key))?;
        for r in svc.reals.into_iter().chain(svc.sorry) {
            if let Some(Some(real)) = self.reals.get_mut(r as usize) {
                real.removed = true;
            }
        }
        match svc.key {
            ServiceKey::Addr { proto, addr, port } => {
                self.by_addr.remove(&(proto.number(), addr16(&addr), port));
            }
            ServiceKey::Fwmark { mark, family } => {
                self.by_mark.remove(&(mark, family));
            }
        }
        self.rebuild_vips();
        Ok(())
    }

    /// Removes every service (`-C`).
    pub fn clear(&mut self) {
        let keys: Vec<ServiceKey> = self.services().map(|s| s.key).collect();
        for k in keys {
            // Cannot fail: the key was just read from the table.
            let _ = self.remove_service(&k);
        }
    }

    fn validate_real(
        key: &ServiceKey,
        svc: &Service,
        addr: &IpAddr,
        o: &RealOptions,
    ) -> Result<(), ConfigError> {
        if o.weight > MAX_WEIGHT {
            return Err(ConfigError::OutOfRange {
                what: "weight",
                value: u64::from(o.weight),
                max: u64::from(MAX_WEIGHT),
            });
        }
        if o.l_threshold > 0 && o.u_threshold > 0 && o.l_threshold > o.u_threshold {
            return Err(ConfigError::Invalid(format!(
                "lower threshold {} is above the upper threshold {}",
                o.l_threshold, o.u_threshold
            )));
        }
        refuse_v4_mapped("real server", addr)?;
        if Family::of(addr) != key.family() {
            return Err(ConfigError::Invalid(format!(
                "real server {addr} is not of the service's address family"
            )));
        }
        if o.method == Method::FullNat && svc.options.local_addrs.is_empty() {
            return Err(ConfigError::Invalid(format!(
                "FullNAT real server {addr} needs a local address pool on service {key}"
            )));
        }
        Ok(())
    }

    fn real_port(key: &ServiceKey, port: Option<u16>) -> u16 {
        match port {
            Some(p) if p != 0 => p,
            _ => key.port(),
        }
    }

    /// A free real-server slot: the first unused one, or a new one within `max_reals`.
    fn free_real_slot(&mut self) -> Result<RealId, ConfigError> {
        match self.reals.iter().position(Option::is_none) {
            Some(i) => Ok(i as RealId),
            None if self.reals.len() < self.max_reals => {
                self.reals.push(None);
                Ok((self.reals.len() - 1) as RealId)
            }
            None => Err(ConfigError::TableFull("real servers")),
        }
    }

    /// Adds a real server to a service (`-a`). A port of `None` or 0 means the virtual port.
    pub fn add_real(
        &mut self,
        key: &ServiceKey,
        addr: IpAddr,
        port: Option<u16>,
        options: RealOptions,
    ) -> Result<RealId, ConfigError> {
        let port = Self::real_port(key, port);
        let svc = self.find(key).ok_or(ConfigError::NoSuchService(*key))?;
        Self::validate_real(key, svc, &addr, &options)?;
        if self.find_real(svc, &addr, port).is_some() {
            return Err(ConfigError::DestinationExists(addr, port));
        }
        let sid = svc.id;
        // IPVS restores a destination from its trash when it is added again.
        let restored = self
            .reals
            .iter()
            .flatten()
            .find(|r| r.removed && r.service == sid && r.addr == addr && r.port == port);
        let rid = match restored {
            Some(r) => r.id,
            None => self.free_real_slot()?,
        };
        self.reals[rid as usize] = Some(RealServer {
            id: rid,
            service: sid,
            addr,
            port,
            options,
            removed: false,
            up: true,
        });
        let version = self.bump();
        if let Some(svc) = self.services[usize::from(sid)].as_mut() {
            svc.reals.push(rid);
            svc.version = version;
        }
        Ok(rid)
    }

    /// Changes a real server's options (`-e`).
    pub fn edit_real(
        &mut self,
        key: &ServiceKey,
        addr: IpAddr,
        port: Option<u16>,
        options: RealOptions,
    ) -> Result<(), ConfigError> {
        let port = Self::real_port(key, port);
        let svc = self.find(key).ok_or(ConfigError::NoSuchService(*key))?;
        Self::validate_real(key, svc, &addr, &options)?;
        let (sid, rid) = self.destination(key, addr, port)?;
        if let Some(Some(r)) = self.reals.get_mut(rid as usize) {
            r.options = options;
        }
        self.new_version(sid, |_| {});
        Ok(())
    }

    /// Removes a real server from a service (`-d`). It stays in the table marked removed
    /// until [`Self::purge_real`] so existing connections can finish.
    pub fn remove_real(
        &mut self,
        key: &ServiceKey,
        addr: IpAddr,
        port: Option<u16>,
    ) -> Result<RealId, ConfigError> {
        let (sid, rid) = self.destination(key, addr, Self::real_port(key, port))?;
        if let Some(Some(r)) = self.reals.get_mut(rid as usize) {
            r.removed = true;
        }
        self.new_version(sid, |svc| svc.reals.retain(|&r| r != rid));
        Ok(rid)
    }

    /// Frees a removed real server's slot for reuse (the control plane calls this once no
    /// connection refers to it any more).
    pub fn purge_real(&mut self, id: RealId) -> bool {
        match self.reals.get_mut(id as usize) {
            Some(slot @ Some(_)) if slot.as_ref().is_some_and(|r| r.removed) => {
                *slot = None;
                true
            }
            _ => false,
        }
    }

    /// Sets a real server's health; false if it did not change. The service's version moves so
    /// the workers rebuild its scheduler (hash tables skip servers that are down).
    pub fn set_up(&mut self, id: RealId, up: bool) -> bool {
        let Some(Some(r)) = self.reals.get_mut(id as usize) else {
            return false;
        };
        if r.up == up {
            return false;
        }
        r.up = up;
        let sid = r.service;
        let version = self.bump();
        if let Some(svc) = self
            .services
            .get_mut(usize::from(sid))
            .and_then(Option::as_mut)
        {
            svc.version = version;
        }
        true
    }

    /// Withdraws a service (`down`) or brings it back; false if nothing changed.
    pub fn set_down(&mut self, key: &ServiceKey, down: bool) -> bool {
        let Some(id) = self.find(key).map(|s| s.id) else {
            return false;
        };
        match self.services[usize::from(id)].as_mut() {
            Some(svc) if svc.down != down => {
                svc.down = down;
                true
            }
            _ => false,
        }
    }

    /// Sets or clears a service's sorry server (`addr`, port, options); the previous one is
    /// marked removed (its connections finish). Setting the same server again changes nothing;
    /// returns whether anything changed.
    pub fn set_sorry(
        &mut self,
        key: &ServiceKey,
        sorry: Option<(IpAddr, Option<u16>, RealOptions)>,
    ) -> Result<bool, ConfigError> {
        let svc = self.find(key).ok_or(ConfigError::NoSuchService(*key))?;
        let (sid, old) = (svc.id, svc.sorry);
        if let Some((addr, port, o)) = &sorry {
            Self::validate_real(key, svc, addr, o)?;
            let port = Self::real_port(key, *port);
            if let Some(r) = old.and_then(|r| self.real(r)) {
                if r.addr == *addr && r.port == port && r.options == *o {
                    return Ok(false);
                }
            }
        } else if old.is_none() {
            return Ok(false);
        }
        if let Some(Some(r)) = old.and_then(|r| self.reals.get_mut(r as usize)) {
            r.removed = true;
        }
        let new = match sorry {
            None => None,
            Some((addr, port, options)) => {
                let rid = self.free_real_slot()?;
                self.reals[rid as usize] = Some(RealServer {
                    id: rid,
                    service: sid,
                    addr,
                    port: Self::real_port(key, port),
                    options,
                    removed: false,
                    up: true,
                });
                Some(rid)
            }
        };
        let version = self.bump();
        if let Some(svc) = self.services[usize::from(sid)].as_mut() {
            svc.sorry = new;
            svc.version = version;
        }
        Ok(true)
    }

    /// Replaces the firewall-mark rules.
    pub fn set_mark_rules(&mut self, rules: Vec<MarkRule>) {
        self.mark_rules = rules;
        self.rebuild_vips();
    }

    fn rebuild_vips(&mut self) {
        let mut v: FxHashSet<[u8; 16]> = self
            .services
            .iter()
            .flatten()
            .filter_map(|s| match s.key {
                ServiceKey::Addr { addr, .. } => Some(addr16(&addr)),
                ServiceKey::Fwmark { .. } => None,
            })
            .collect();
        for r in &self.mark_rules {
            let host = matches!(
                (r.dst, r.prefix_len),
                (IpAddr::V4(_), 32) | (IpAddr::V6(_), 128)
            );
            if host {
                v.insert(addr16(&r.dst));
            }
        }
        self.vips = v;
    }
}
