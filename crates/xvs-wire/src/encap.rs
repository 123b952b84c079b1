//! The tunnel headers IPVS's TUN forwarding puts between the outer IP header and the client's
//! packet besides plain IPIP (ipvsadm `--tun-type gue|gre`): GUE variant 0 over UDP
//! (draft-ietf-intarea-gue, the kernel's `fou` module) and GRE (RFC 2784, the kernel's
//! `ip_gre`), as ip_vs_xmit.c builds them.

use crate::checksum;

/// UDP header length.
pub const UDP_LEN: usize = 8;
/// GUE base header length (no options).
pub const GUE_LEN: usize = 4;
/// GRE header length without and with the checksum field.
pub const GRE_LEN: usize = 4;
/// GRE header length with the checksum and reserved fields (C bit set).
pub const GRE_CSUM_LEN: usize = 8;
/// GRE's C bit: a checksum follows the protocol type.
pub const GRE_FLAG_CSUM: u16 = 0x8000;
/// EtherTypes GRE carries.
pub const ETHERTYPE_IPV4: u16 = 0x0800;
/// See [`ETHERTYPE_IPV4`].
pub const ETHERTYPE_IPV6: u16 = 0x86dd;

/// The UDP source port of the GUE packets of flow `key`: a hash of the flow in the kernel's
/// ephemeral range (32768–60999), as udp_flow_src_port picks it, so that a real server
/// spreads the tunnels' receive over its queues and a flow stays on one.
pub fn gue_source_port(key: &crate::FlowKey) -> u16 {
    const SEED: u64 = 0x6775_655f_7370_6f72;
    32768 + (key.hash(SEED) % 28232) as u16
}

/// Writes a UDP header and a GUE base header (version 0, no options) for `proto` (4: IPv4,
/// 41: IPv6) into `out[..12]`; the UDP length covers `payload_len` bytes after them; the
/// checksum is left 0 (filled by [`udp_checksum_v4`]/[`udp_checksum_v6`] when asked for).
/// Returns false if `out` is too short.
pub fn emit_udp_gue(out: &mut [u8], sport: u16, dport: u16, proto: u8, payload_len: usize) -> bool {
    let Some(h) = out.get_mut(..UDP_LEN + GUE_LEN) else {
        return false;
    };
    let len = (UDP_LEN + GUE_LEN + payload_len) as u16;
    h[0..2].copy_from_slice(&sport.to_be_bytes());
    h[2..4].copy_from_slice(&dport.to_be_bytes());
    h[4..6].copy_from_slice(&len.to_be_bytes());
    h[6..8].copy_from_slice(&[0, 0]);
    // Version 0, C 0, hlen 0 (no options), proto/ctype, flags 0.
    h[8] = 0;
    h[9] = proto;
    h[10..12].copy_from_slice(&[0, 0]);
    true
}

/// Sets the UDP checksum of `segment` (UDP header onwards) sent from `src` to `dst` (IPv4).
pub fn udp_checksum_v4(segment: &mut [u8], src: [u8; 4], dst: [u8; 4]) {
    set_udp_checksum(segment, |s| {
        checksum::l4_v4(src, dst, crate::ip_proto::UDP, s)
    });
}

/// Sets the UDP checksum of `segment` sent from `src` to `dst` (IPv6).
pub fn udp_checksum_v6(segment: &mut [u8], src: [u8; 16], dst: [u8; 16]) {
    set_udp_checksum(segment, |s| {
        checksum::l4_v6(src, dst, crate::ip_proto::UDP, s)
    });
}

/// Zeroes the checksum field, computes it with `sum` (over the pseudo-header and the
/// segment) and stores it; a computed 0 is sent as all ones (0 means "none" in UDP).
fn set_udp_checksum(segment: &mut [u8], sum: impl FnOnce(&[u8]) -> u16) {
    if segment.len() < UDP_LEN {
        return;
    }
    segment[6..8].copy_from_slice(&[0, 0]);
    let c = match sum(segment) {
        0 => 0xffff,
        c => c,
    };
    segment[6..8].copy_from_slice(&c.to_be_bytes());
}

/// Writes a GRE header for `ethertype` at the start of `out`; with `csum`, the C bit, and the
/// checksum over the header and the `payload` that follows it in `out`. Returns the header's
/// length, or None if `out` is too short.
pub fn emit_gre(out: &mut [u8], ethertype: u16, csum: bool) -> Option<usize> {
    let len = if csum { GRE_CSUM_LEN } else { GRE_LEN };
    if out.len() < len {
        return None;
    }
    let flags = if csum { GRE_FLAG_CSUM } else { 0 };
    out[0..2].copy_from_slice(&flags.to_be_bytes());
    out[2..4].copy_from_slice(&ethertype.to_be_bytes());
    if csum {
        out[4..8].copy_from_slice(&[0, 0, 0, 0]);
        let c = checksum::checksum(out);
        out[4..6].copy_from_slice(&c.to_be_bytes());
    }
    Some(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gue_over_udp_as_fou_reads_it() {
        let mut b = [0xaau8; 12 + 20];
        assert!(emit_udp_gue(&mut b, 40000, 6080, 4, 20));
        assert_eq!(&b[..12], &[0x9c, 0x40, 0x17, 0xc0, 0, 32, 0, 0, 0, 4, 0, 0]);
        udp_checksum_v4(&mut b, [198, 18, 0, 2], [198, 18, 0, 11]);
        // Verifies: the sum over pseudo-header and segment is all ones.
        assert_eq!(
            checksum::l4_v4([198, 18, 0, 2], [198, 18, 0, 11], 17, &b),
            0,
            "checksum verifies"
        );
        assert!(!emit_udp_gue(&mut [0u8; 11], 1, 2, 4, 0));
    }

    #[test]
    fn gre_with_and_without_checksum() {
        let mut b = [0u8; 8 + 4];
        b[8..].copy_from_slice(&[0x45, 0, 0, 4]);
        assert_eq!(emit_gre(&mut b, ETHERTYPE_IPV4, false), Some(4));
        assert_eq!(&b[..4], &[0, 0, 0x08, 0x00]);
        assert_eq!(emit_gre(&mut b, ETHERTYPE_IPV6, true), Some(8));
        assert_eq!(&b[..4], &[0x80, 0, 0x86, 0xdd]);
        assert_eq!(checksum::checksum(&b), 0, "the GRE checksum verifies");
        assert_eq!(emit_gre(&mut [0u8; 7], ETHERTYPE_IPV4, true), None);
    }
}
