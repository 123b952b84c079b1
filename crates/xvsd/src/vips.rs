//! Optional management of the VIP addresses (`--manage-vips`): each virtual IP is added as a
//! host address of the first interface, so the host answers ARP/ND for it as IPVS directors do;
//! addresses of services that go away are removed again, and all of them at exit (only those
//! xvsd added).

use std::net::IpAddr;
use xvs_core::service::{Service, ServiceKey, ServiceTable};
use xvs_io::netlink::Netlink;

/// The addresses of `services` (firewall-mark services have none), sorted, once each.
pub fn addresses<'a>(services: impl Iterator<Item = &'a Service>) -> Vec<IpAddr> {
    let mut vips: Vec<IpAddr> = services
        .filter_map(|s| match s.key {
            ServiceKey::Addr { addr, .. } => Some(addr),
            ServiceKey::Fwmark { .. } => None,
        })
        .collect();
    vips.sort();
    vips.dedup();
    vips
}

/// Adds the VIPs `services` has and `managed` lacks, removes the managed ones it no longer
/// has. An address that was already present is left alone (and not managed). True if an
/// address was added or removed.
pub fn sync(
    nl: &mut Netlink,
    ifindex: u32,
    services: &ServiceTable,
    managed: &mut Vec<(u32, IpAddr)>,
) -> Result<bool, String> {
    let want = addresses(services.services());
    let gone: Vec<(u32, IpAddr)> = managed
        .iter()
        .filter(|(_, ip)| !want.contains(ip))
        .copied()
        .collect();
    remove_all(nl, &gone);
    managed.retain(|m| !gone.contains(m));
    let mut changed = !gone.is_empty();
    for ip in want {
        if managed.iter().any(|(_, m)| *m == ip) {
            continue;
        }
        match nl.add_address(ifindex, ip) {
            Ok(true) => {
                tracing::info!(vip = %ip, "VIP address added");
                managed.push((ifindex, ip));
                changed = true;
            }
            Ok(false) => tracing::debug!(vip = %ip, "VIP address already present"),
            Err(e) => return Err(format!("cannot add VIP {ip}: {e}")),
        }
    }
    Ok(changed)
}

/// Removes the addresses in `added`.
pub fn remove_all(nl: &mut Netlink, added: &[(u32, IpAddr)]) {
    for (ifindex, ip) in added {
        match nl.remove_address(*ifindex, *ip) {
            Ok(()) => tracing::info!(vip = %ip, "VIP address removed"),
            Err(e) => tracing::warn!(vip = %ip, error = %e, "cannot remove VIP address"),
        }
    }
}
