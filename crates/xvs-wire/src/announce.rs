//! Announcing that an address moved here: the gratuitous ARP (IPv4) and the unsolicited
//! neighbour advertisement (IPv6) a new VRRP master sends for each of its addresses, built as
//! keepalived 2.2.7 builds them (vrrp_arp.c, vrrp_ndisc.c).

use crate::checksum;

/// Length of a gratuitous ARP frame (no padding; the driver pads).
pub const GARP_LEN: usize = 42;
/// Length of an unsolicited NA frame.
pub const NA_LEN: usize = 14 + 40 + 32;

/// A gratuitous ARP for `ip` from `mac`: an ARP request to the broadcast address with sender
/// and target both `ip`, target hardware address all ones.
pub fn garp(mac: [u8; 6], ip: [u8; 4]) -> [u8; GARP_LEN] {
    let mut f = [0u8; GARP_LEN];
    f[..6].fill(0xff);
    f[6..12].copy_from_slice(&mac);
    f[12..14].copy_from_slice(&[0x08, 0x06]);
    // htype 1, ptype IPv4, hlen 6, plen 4, op 1 (request).
    f[14..22].copy_from_slice(&[0, 1, 0x08, 0x00, 6, 4, 0, 1]);
    f[22..28].copy_from_slice(&mac);
    f[28..32].copy_from_slice(&ip);
    f[32..38].fill(0xff);
    f[38..42].copy_from_slice(&ip);
    f
}

/// An unsolicited neighbour advertisement for `ip` from `mac`: from `ip` itself to all nodes
/// (ff02::1), hop limit 255, the Override flag (and Router if `router`), the target link-layer
/// address option.
pub fn unsolicited_na(mac: [u8; 6], ip: [u8; 16], router: bool) -> [u8; NA_LEN] {
    let all_nodes = [0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    let mut f = [0u8; NA_LEN];
    f[..6].copy_from_slice(&[0x33, 0x33, 0, 0, 0, 1]);
    f[6..12].copy_from_slice(&mac);
    f[12..14].copy_from_slice(&[0x86, 0xdd]);
    let ip6 = &mut f[14..54];
    ip6[0] = 0x60;
    ip6[4..6].copy_from_slice(&32u16.to_be_bytes());
    ip6[6] = crate::ip_proto::ICMPV6;
    ip6[7] = 255;
    ip6[8..24].copy_from_slice(&ip);
    ip6[24..40].copy_from_slice(&all_nodes);
    let icmp = &mut f[54..];
    icmp[0] = 136;
    icmp[4] = if router { 0xa0 } else { 0x20 };
    icmp[8..24].copy_from_slice(&ip);
    icmp[24] = 2; // target link-layer address
    icmp[25] = 1; // 8 bytes
    icmp[26..32].copy_from_slice(&mac);
    let c = checksum::l4_v6(ip, all_nodes, crate::ip_proto::ICMPV6, icmp);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gratuitous_arp_as_keepalived_sends_it() {
        let f = garp([2, 0, 0, 0, 0, 1], [198, 18, 0, 10]);
        let arp = crate::arp::ArpPacket::new_checked(&f[14..]).unwrap();
        assert_eq!(arp.operation(), crate::arp::op::REQUEST);
        assert_eq!(f[..6], [0xff; 6]);
        assert_eq!(f[28..32], f[38..42], "sender and target are the address");
        assert_eq!(f[32..38], [0xff; 6], "target MAC all ones");
    }

    #[test]
    fn an_unsolicited_na_checks_out() {
        let ip = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10];
        let f = unsolicited_na([2, 0, 0, 0, 0, 1], ip, false);
        let all_nodes = [0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        assert_eq!(checksum::l4_v6(ip, all_nodes, 58, &f[54..]), 0);
        assert_eq!(f[54], 136);
        assert_eq!(f[58] & 0x20, 0x20, "override");
        assert_eq!(f[21], 255, "hop limit");
    }
}
