//! Ethernet II frames and 802.1Q / 802.1ad VLAN tags.

use crate::view::{fields, view};
use crate::{Layer, Result, WireError, be16};
use core::fmt;

/// A 48-bit MAC address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// The all-zero address, used as "unknown".
    pub const ZERO: MacAddr = MacAddr([0; 6]);
    /// The broadcast address.
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);

    /// True for group (multicast or broadcast) addresses.
    #[inline]
    pub const fn is_multicast(&self) -> bool {
        self.0[0] & 1 == 1
    }

    /// Parses `aa:bb:cc:dd:ee:ff` (also accepts `-` as separator).
    #[inline]
    pub fn parse(s: &str) -> Option<MacAddr> {
        let mut out = [0u8; 6];
        let mut parts = s.split([':', '-']);
        for b in &mut out {
            let p = parts.next()?;
            if p.is_empty() || p.len() > 2 {
                return None;
            }
            *b = u8::from_str_radix(p, 16).ok()?;
        }
        parts.next().is_none().then_some(MacAddr(out))
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// EtherType values xvs looks at.
pub mod ethertype {
    /// IPv4.
    pub const IPV4: u16 = 0x0800;
    /// ARP.
    pub const ARP: u16 = 0x0806;
    /// 802.1Q customer VLAN tag.
    pub const VLAN: u16 = 0x8100;
    /// 802.1ad service VLAN tag (QinQ outer).
    pub const QINQ: u16 = 0x88a8;
    /// IPv6.
    pub const IPV6: u16 = 0x86dd;
}

mod field {
    use core::ops::Range;
    pub const DST: Range<usize> = 0..6;
    pub const SRC: Range<usize> = 6..12;
    pub const ETHERTYPE: usize = 12;
}

/// Length of an untagged Ethernet II header.
pub const HEADER_LEN: usize = 14;
/// Length of one VLAN tag.
pub const VLAN_TAG_LEN: usize = 4;
/// The most VLAN tags xvs walks through (QinQ).
pub const MAX_VLAN_TAGS: usize = 2;

view! {
    /// A view of an Ethernet II frame.
    pub struct EthernetFrame;
}

fields! { EthernetFrame {
    /// The outer EtherType (a VLAN TPID if the frame is tagged).
    ethertype /
        /// Sets the outer EtherType.
        set_ethertype: u16 = field::ETHERTYPE;
}}

impl<T: AsRef<[u8]>> EthernetFrame<T> {
    /// Checks that the untagged header fits in the buffer.
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        let got = self.buffer.as_ref().len();
        if got < HEADER_LEN {
            return Err(WireError::truncated(Layer::Ethernet, HEADER_LEN, got));
        }
        Ok(())
    }

    /// Destination address.
    #[inline]
    pub fn dst(&self) -> MacAddr {
        let mut m = [0; 6];
        m.copy_from_slice(&self.buffer.as_ref()[field::DST]);
        MacAddr(m)
    }

    /// Source address.
    #[inline]
    pub fn src(&self) -> MacAddr {
        let mut m = [0; 6];
        m.copy_from_slice(&self.buffer.as_ref()[field::SRC]);
        MacAddr(m)
    }

    /// Walks the VLAN tags and returns where the layer-3 header starts.
    #[inline]
    pub fn l2_header(&self) -> Result<L2Header> {
        l2_header(self.buffer.as_ref())
    }

    /// Returns the underlying buffer.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> EthernetFrame<T> {
    /// Sets the destination address.
    #[inline]
    pub fn set_dst(&mut self, mac: MacAddr) {
        self.buffer.as_mut()[field::DST].copy_from_slice(&mac.0);
    }

    /// Sets the source address.
    #[inline]
    pub fn set_src(&mut self, mac: MacAddr) {
        self.buffer.as_mut()[field::SRC].copy_from_slice(&mac.0);
    }
}

/// The result of walking an Ethernet header and its VLAN tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct L2Header {
    /// EtherType of the layer-3 payload (after all tags).
    pub ethertype: u16,
    /// Offset of the layer-3 header from the start of the frame.
    pub l3_offset: usize,
    /// VLAN IDs of the tags, outermost first; 0 where absent.
    pub vlan_ids: [u16; MAX_VLAN_TAGS],
    /// How many VLAN tags the frame carries.
    pub vlan_count: u8,
}

/// Walks an Ethernet header and up to [`MAX_VLAN_TAGS`] VLAN tags.
pub fn l2_header(frame: &[u8]) -> Result<L2Header> {
    if frame.len() < HEADER_LEN {
        return Err(WireError::truncated(
            Layer::Ethernet,
            HEADER_LEN,
            frame.len(),
        ));
    }
    let mut ethertype = be16(frame, field::ETHERTYPE);
    let mut off = HEADER_LEN;
    let mut out = L2Header {
        ethertype,
        l3_offset: off,
        vlan_ids: [0; MAX_VLAN_TAGS],
        vlan_count: 0,
    };
    while ethertype == ethertype::VLAN || ethertype == ethertype::QINQ {
        let n = usize::from(out.vlan_count);
        if n == MAX_VLAN_TAGS {
            return Err(WireError::Unsupported {
                layer: Layer::Vlan,
                field: "tag count",
                found: (n + 1) as u32,
            });
        }
        if frame.len() < off + VLAN_TAG_LEN {
            return Err(WireError::truncated(
                Layer::Vlan,
                off + VLAN_TAG_LEN,
                frame.len(),
            ));
        }
        out.vlan_ids[n] = be16(frame, off) & 0x0fff;
        ethertype = be16(frame, off + 2);
        off += VLAN_TAG_LEN;
        out.vlan_count += 1;
    }
    out.ethertype = ethertype;
    out.l3_offset = off;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const UNTAGGED: [u8; 16] = [
        0x02, 0, 0, 0, 0, 0x01, // dst
        0x02, 0, 0, 0, 0, 0x02, // src
        0x08, 0x00, // ipv4
        0x45, 0x00,
    ];

    #[test]
    fn deconstruct() {
        let f = EthernetFrame::new_checked(&UNTAGGED[..]).unwrap();
        assert_eq!(f.dst(), MacAddr([2, 0, 0, 0, 0, 1]));
        assert_eq!(f.src(), MacAddr([2, 0, 0, 0, 0, 2]));
        assert_eq!(f.ethertype(), ethertype::IPV4);
        let l2 = f.l2_header().unwrap();
        assert_eq!(l2.l3_offset, 14);
        assert_eq!(l2.vlan_count, 0);
    }

    #[test]
    fn construct() {
        let mut buf = [0u8; 14];
        let mut f = EthernetFrame::new_unchecked(&mut buf[..]);
        f.set_dst(MacAddr([2, 0, 0, 0, 0, 1]));
        f.set_src(MacAddr([2, 0, 0, 0, 0, 2]));
        f.set_ethertype(ethertype::IPV4);
        assert_eq!(&buf[..], &UNTAGGED[..14]);
    }

    #[test]
    fn truncated() {
        assert_eq!(
            EthernetFrame::new_checked(&UNTAGGED[..13]).unwrap_err(),
            WireError::Truncated {
                layer: Layer::Ethernet,
                needed: 14,
                got: 13
            }
        );
    }

    #[test]
    fn vlan_and_qinq() {
        let mut f = [0u8; 22];
        f[12..14].copy_from_slice(&ethertype::QINQ.to_be_bytes());
        f[14..16].copy_from_slice(&0x2064u16.to_be_bytes()); // pcp 1, vid 100
        f[16..18].copy_from_slice(&ethertype::VLAN.to_be_bytes());
        f[18..20].copy_from_slice(&200u16.to_be_bytes());
        f[20..22].copy_from_slice(&ethertype::IPV6.to_be_bytes());
        let l2 = l2_header(&f).unwrap();
        assert_eq!(l2.ethertype, ethertype::IPV6);
        assert_eq!(l2.l3_offset, 22);
        assert_eq!(l2.vlan_ids, [100, 200]);
        assert_eq!(l2.vlan_count, 2);
        assert!(matches!(
            l2_header(&f[..19]),
            Err(WireError::Truncated {
                layer: Layer::Vlan,
                ..
            })
        ));
    }

    #[test]
    fn three_tags_rejected() {
        let mut f = [0u8; 30];
        for i in 0..3 {
            let at = 12 + 4 * i;
            f[at..at + 2].copy_from_slice(&ethertype::VLAN.to_be_bytes());
        }
        assert!(matches!(
            l2_header(&f),
            Err(WireError::Unsupported {
                layer: Layer::Vlan,
                ..
            })
        ));
    }

    #[test]
    fn mac_parse_display() {
        let m = MacAddr::parse("02:aa:0b:00:ff:10").unwrap();
        assert_eq!(m.0, [0x02, 0xaa, 0x0b, 0x00, 0xff, 0x10]);
        assert_eq!(std::format!("{m}"), "02:aa:0b:00:ff:10");
        assert!(MacAddr::parse("02:aa:0b:00:ff").is_none());
        assert!(MacAddr::parse("02:aa:0b:00:ff:10:11").is_none());
        assert!(MacAddr::parse("zz:aa:0b:00:ff:10").is_none());
        assert!(MacAddr::BROADCAST.is_multicast());
        assert!(!m.is_multicast());
    }
}
