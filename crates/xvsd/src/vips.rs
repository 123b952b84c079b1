//! Optional management of the VIP addresses (`--manage-vips`): each virtual IP is added as a
//! host address of the first interface at start, so the host answers ARP/ND for it as IPVS
//! directors do, and removed at exit (only those xvsd added).

use std::net::IpAddr;
use xvs_core::service::{ServiceKey, ServiceTable};
use xvs_io::netlink::Netlink;

/// Adds every VIP; returns those that were added (not already present).
pub fn add_all(
    nl: &mut Netlink,
    ifindex: u32,
    services: &ServiceTable,
) -> Result<Vec<(u32, IpAddr)>, String> {
    let mut added = Vec::new();
    let mut vips: Vec<IpAddr> = services
        .services()
        .filter_map(|s| match s.key {
            ServiceKey::Addr { addr, .. } => Some(addr),
            ServiceKey::Fwmark { .. } => None,
        })
        .collect();
    vips.sort();
    vips.dedup();
    for ip in vips {
        match nl.add_address(ifindex, ip) {
            Ok(true) => {
                tracing::info!(vip = %ip, "VIP address added");
                added.push((ifindex, ip));
            }
            Ok(false) => tracing::info!(vip = %ip, "VIP address already present"),
            Err(e) => {
                remove_all(nl, &added);
                return Err(format!("cannot add VIP {ip}: {e}"));
            }
        }
    }
    Ok(added)
}

/// Removes the addresses [`add_all`] added.
pub fn remove_all(nl: &mut Netlink, added: &[(u32, IpAddr)]) {
    for (ifindex, ip) in added {
        match nl.remove_address(*ifindex, *ip) {
            Ok(()) => tracing::info!(vip = %ip, "VIP address removed"),
            Err(e) => tracing::warn!(vip = %ip, error = %e, "cannot remove VIP address"),
        }
    }
}
