//! VRRP advertisements: version 2 (RFC 3768: IPv4, an interval in seconds, simple-password
//! authentication) and version 3 (RFC 5798: IPv4 and IPv6, an interval in centiseconds, a
//! checksum over a pseudo-header). The VRRP packet only (the IP header is the socket's).
//!
//! ```text
//!  0               1               2               3
//! | ver | type    | VRID          | priority      | count IPvX    |
//! v2: | auth type     | adver int (s) | checksum                      |
//! v3: | rsvd | max adver int (cs, 12 bits)        | checksum                      |
//! | addresses (4 or 16 bytes each) …                              |
//! v2: | authentication data (8 bytes)                                 |
//! ```

use crate::checksum;
use crate::view::{fields, view};
use crate::{Layer, Result, WireError};

/// IP protocol number of VRRP.
pub const PROTO: u8 = 112;
/// The IPv4 multicast group of VRRP (224.0.0.18).
pub const GROUP_V4: [u8; 4] = [224, 0, 0, 18];
/// The IPv6 multicast group of VRRP (ff02::12).
pub const GROUP_V6: [u8; 16] = [0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x12];
/// Length of the fixed header.
pub const HEADER_LEN: usize = 8;
/// Length of v2's authentication data.
pub const AUTH_LEN: usize = 8;
/// The only packet type: an advertisement.
pub const TYPE_ADVERT: u8 = 1;
/// v2 authentication: none.
pub const AUTH_NONE: u8 = 0;
/// v2 authentication: simple text password.
pub const AUTH_PASS: u8 = 1;
/// Offset of the checksum.
pub const CHECKSUM_OFFSET: usize = 6;

view! {
    /// A view of a VRRP packet.
    pub struct VrrpPacket;
}

fields! { VrrpPacket {
    /// Version (high nibble) and type (low nibble).
    ver_type /
        /// Sets it.
        set_ver_type: u8 = 0;
    /// Virtual router id.
    vrid /
        /// Sets it.
        set_vrid: u8 = 1;
    /// Priority (0: the master is leaving; 255: the address owner).
    priority /
        /// Sets it.
        set_priority: u8 = 2;
    /// Number of addresses.
    count /
        /// Sets it.
        set_count: u8 = 3;
    /// v2: authentication type.
    auth_type /
        /// Sets it.
        set_auth_type: u8 = 4;
    /// v2: advertisement interval in seconds.
    adver_int_s /
        /// Sets it.
        set_adver_int_s: u8 = 5;
    /// v3: the 16 bits holding the interval in centiseconds (low 12) and reserved bits.
    rsvd_adver_cs /
        /// Sets it.
        set_rsvd_adver_cs: u16 = 4;
    /// Checksum as stored.
    checksum /
        /// Sets it.
        set_checksum: u16 = CHECKSUM_OFFSET;
}}

impl<T: AsRef<[u8]>> VrrpPacket<T> {
    /// Version (2 or 3).
    pub fn version(&self) -> u8 {
        self.ver_type() >> 4
    }

    /// Type (1: advertisement).
    pub fn kind(&self) -> u8 {
        self.ver_type() & 0x0f
    }

    /// v3: the maximum advertisement interval in centiseconds.
    pub fn adver_int_cs(&self) -> u16 {
        self.rsvd_adver_cs() & 0x0fff
    }

    /// The advertisement interval in centiseconds, whatever the version.
    pub fn interval_cs(&self) -> u32 {
        if self.version() == 2 {
            u32::from(self.adver_int_s()) * 100
        } else {
            u32::from(self.adver_int_cs())
        }
    }

    /// Bytes the packet needs for `count` addresses of `addr_len` bytes (v2 adds the
    /// authentication data).
    pub fn needed(&self, addr_len: usize) -> usize {
        let auth = if self.version() == 2 { AUTH_LEN } else { 0 };
        HEADER_LEN + usize::from(self.count()) * addr_len + auth
    }

    /// Checks the fixed header is there. What follows depends on the family: see
    /// [`VrrpPacket::check_len_for`].
    pub fn check_len(&self) -> Result<()> {
        let got = self.buffer.as_ref().len();
        if got < HEADER_LEN {
            return Err(WireError::truncated(Layer::Vrrp, HEADER_LEN, got));
        }
        Ok(())
    }

    /// Checks the packet holds its addresses (of `addr_len` bytes: 4 or 16) and, for v2, its
    /// authentication data. Longer buffers are accepted (Ethernet padding).
    pub fn check_len_for(&self, addr_len: usize) -> Result<()> {
        self.check_len()?;
        let (need, got) = (self.needed(addr_len), self.buffer.as_ref().len());
        if got < need {
            return Err(WireError::truncated(Layer::Vrrp, need, got));
        }
        Ok(())
    }

    /// The `i`-th address (`addr_len` bytes); after [`VrrpPacket::check_len_for`].
    pub fn addr(&self, i: usize, addr_len: usize) -> &[u8] {
        let at = HEADER_LEN + i * addr_len;
        &self.buffer.as_ref()[at..at + addr_len]
    }

    /// v2's authentication data; after [`VrrpPacket::check_len_for`].
    pub fn auth_data(&self, addr_len: usize) -> &[u8] {
        let at = HEADER_LEN + usize::from(self.count()) * addr_len;
        &self.buffer.as_ref()[at..at + AUTH_LEN]
    }

    /// The packet's own bytes (without padding) for `addr_len`-byte addresses.
    pub fn bytes(&self, addr_len: usize) -> &[u8] {
        let b = self.buffer.as_ref();
        &b[..self.needed(addr_len).min(b.len())]
    }

    /// True if the checksum is right. v2: over the packet alone; v3 over IPv4: with the
    /// pseudo-header of `src` → `dst` (the address it was sent to); v3 over IPv6: likewise.
    pub fn checksum_ok(&self, src: &[u8], dst: &[u8]) -> bool {
        let addr_len = if src.len() == 16 { 16 } else { 4 };
        compute(self.bytes(addr_len), self.version(), src, dst) == 0
    }
}

/// The checksum over `packet` (whose checksum field holds what it holds: 0 when emitting,
/// the stored value when verifying, which then yields 0).
fn compute(packet: &[u8], version: u8, src: &[u8], dst: &[u8]) -> u16 {
    let len = packet.len();
    let acc = checksum::sum(packet);
    let acc = if version == 2 {
        acc
    } else if let (Ok(s), Ok(d)) = (<[u8; 4]>::try_from(src), <[u8; 4]>::try_from(dst)) {
        acc + checksum::pseudo_v4(s, d, PROTO, len as u16)
    } else if let (Ok(s), Ok(d)) = (<[u8; 16]>::try_from(src), <[u8; 16]>::try_from(dst)) {
        acc + checksum::pseudo_v6(s, d, PROTO, len as u32)
    } else {
        acc
    };
    !checksum::fold(acc)
}

/// An advertisement to write.
#[derive(Debug, Clone, Copy)]
pub struct Advert<'a> {
    /// 2 or 3.
    pub version: u8,
    /// Virtual router id.
    pub vrid: u8,
    /// Priority.
    pub priority: u8,
    /// Interval in centiseconds (v2 sends whole seconds, at least 1).
    pub interval_cs: u16,
    /// v2 authentication type.
    pub auth_type: u8,
    /// v2 password (at most 8 bytes are sent, zero-padded).
    pub password: &'a [u8],
    /// The addresses, 4 or 16 bytes each, all of one family.
    pub addrs: &'a [&'a [u8]],
}

impl Advert<'_> {
    /// Bytes [`Advert::emit`] writes.
    pub fn len(&self) -> usize {
        let addr_len = self.addrs.first().map_or(4, |a| a.len());
        HEADER_LEN + self.addrs.len() * addr_len + if self.version == 2 { AUTH_LEN } else { 0 }
    }

    /// True if it carries no address (never sent: keepalived requires one).
    pub fn is_empty(&self) -> bool {
        self.addrs.is_empty()
    }

    /// Writes it into `buf` with its checksum (v3: over the pseudo-header `src` → `dst`);
    /// returns its length, or `None` if `buf` is too short or there are more than 255
    /// addresses.
    pub fn emit(&self, buf: &mut [u8], src: &[u8], dst: &[u8]) -> Option<usize> {
        let len = self.len();
        let count = u8::try_from(self.addrs.len()).ok()?;
        let out = buf.get_mut(..len)?;
        out.fill(0);
        let mut p = VrrpPacket::new_unchecked(&mut *out);
        p.set_ver_type(self.version << 4 | TYPE_ADVERT);
        p.set_vrid(self.vrid);
        p.set_priority(self.priority);
        p.set_count(count);
        if self.version == 2 {
            p.set_auth_type(self.auth_type);
            p.set_adver_int_s((self.interval_cs / 100).clamp(1, 255) as u8);
        } else {
            p.set_rsvd_adver_cs(self.interval_cs & 0x0fff);
        }
        let mut at = HEADER_LEN;
        for a in self.addrs {
            out[at..at + a.len()].copy_from_slice(a);
            at += a.len();
        }
        if self.version == 2 && self.auth_type == AUTH_PASS {
            let n = self.password.len().min(AUTH_LEN);
            out[at..at + n].copy_from_slice(&self.password[..n]);
        }
        let c = compute(out, self.version, src, dst);
        VrrpPacket::new_unchecked(&mut *out).set_checksum(c);
        Some(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // keepalived 2.2.7, VRRPv2, VRID 51, priority 150, interval 1 s, PASS "1111", one
    // address 192.168.1.100 (as captured from `vrrp_instance` with `auth_pass 1111`).
    const V2_PASS: [u8; 20] = [
        0x21, 0x33, 0x96, 0x01, 0x01, 0x01, 0x00, 0x00, 192, 168, 1, 100, b'1', b'1', b'1', b'1',
        0, 0, 0, 0,
    ];

    #[test]
    fn v2_emit_and_read_back() {
        let vip = [192u8, 168, 1, 100];
        let a = Advert {
            version: 2,
            vrid: 51,
            priority: 150,
            interval_cs: 100,
            auth_type: AUTH_PASS,
            password: b"1111",
            addrs: &[&vip],
        };
        let mut buf = [0u8; 64];
        let n = a.emit(&mut buf, &[192, 168, 1, 2], &GROUP_V4).unwrap();
        assert_eq!(n, 20);
        let mut want = V2_PASS;
        let c = checksum::checksum(&want);
        want[6..8].copy_from_slice(&c.to_be_bytes());
        assert_eq!(buf[..n], want);
        let p = VrrpPacket::new_checked(&buf[..n]).unwrap();
        p.check_len_for(4).unwrap();
        assert_eq!(
            (p.version(), p.kind(), p.vrid(), p.priority()),
            (2, 1, 51, 150)
        );
        assert_eq!((p.auth_type(), p.interval_cs()), (AUTH_PASS, 100));
        assert_eq!(p.addr(0, 4), vip);
        assert_eq!(&p.auth_data(4)[..4], b"1111");
        assert!(p.checksum_ok(&[192, 168, 1, 2], &GROUP_V4));
        // A v2 checksum does not depend on the addresses of the IP header.
        assert!(p.checksum_ok(&[10, 0, 0, 1], &[10, 0, 0, 2]));
    }

    #[test]
    fn v3_checksums_cover_the_pseudo_header() {
        let vip = [198u8, 18, 0, 10];
        let a = Advert {
            version: 3,
            vrid: 7,
            priority: 100,
            interval_cs: 50,
            auth_type: 0,
            password: b"",
            addrs: &[&vip],
        };
        let src = [198u8, 18, 0, 2];
        let mut buf = [0u8; 64];
        let n = a.emit(&mut buf, &src, &GROUP_V4).unwrap();
        assert_eq!(n, 12);
        let p = VrrpPacket::new_checked(&buf[..n]).unwrap();
        assert_eq!(
            (p.version(), p.adver_int_cs(), p.interval_cs()),
            (3, 50, 50)
        );
        assert!(p.checksum_ok(&src, &GROUP_V4));
        assert!(
            !p.checksum_ok(&[198, 18, 0, 3], &GROUP_V4),
            "another source"
        );
        // IPv6.
        let vip6 = GROUP_V6; // any 16 bytes
        let a6 = Advert {
            addrs: &[&vip6],
            ..a
        };
        let src6 = [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        let n = a6.emit(&mut buf, &src6, &GROUP_V6).unwrap();
        assert_eq!(n, 24);
        let p = VrrpPacket::new_checked(&buf[..n]).unwrap();
        assert!(p.checksum_ok(&src6, &GROUP_V6));
    }

    #[test]
    fn truncated_packets_are_refused() {
        assert!(VrrpPacket::new_checked(&V2_PASS[..7]).is_err());
        let p = VrrpPacket::new_checked(&V2_PASS[..15]).unwrap();
        assert!(matches!(
            p.check_len_for(4),
            Err(WireError::Truncated {
                needed: 20,
                got: 15,
                ..
            })
        ));
        // Padding after the packet is allowed.
        let mut padded = [0u8; 46];
        padded[..20].copy_from_slice(&V2_PASS);
        VrrpPacket::new_checked(&padded[..])
            .unwrap()
            .check_len_for(4)
            .unwrap();
    }
}
