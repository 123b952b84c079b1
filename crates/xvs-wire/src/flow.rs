//! The 5-tuple key of a flow, as the connection table stores, hashes and compares it.
//!
//! Stored as five 64-bit words (source address, destination address, then ports, protocol,
//! version and tag packed in one word): building, hashing and comparing a key are a handful of
//! word operations on the hot path.

/// Key tag of ordinary flows.
pub const TAG_FLOW: u8 = 0;
/// Key tag of persistence templates (client network → real server).
pub const TAG_TEMPLATE: u8 = 1;

/// A flow's identity as seen in one direction: addresses (16-byte form, IPv4 mapped), ports,
/// protocol, IP version and a tag separating persistence templates from flows. 40 bytes.
#[derive(Clone, Copy, Default)]
pub struct FlowKey {
    w: [u64; 5],
}

impl PartialEq for FlowKey {
    /// Five word compares folded into one test (no `memcmp` call).
    #[inline(always)]
    fn eq(&self, o: &FlowKey) -> bool {
        let (a, b) = (&self.w, &o.w);
        ((a[0] ^ b[0]) | (a[1] ^ b[1]) | (a[2] ^ b[2]) | (a[3] ^ b[3]) | (a[4] ^ b[4])) == 0
    }
}

impl Eq for FlowKey {}

impl core::hash::Hash for FlowKey {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        self.w.hash(state);
    }
}

#[inline(always)]
fn word(a: &[u8; 16], at: usize) -> u64 {
    u64::from_le_bytes([
        a[at],
        a[at + 1],
        a[at + 2],
        a[at + 3],
        a[at + 4],
        a[at + 5],
        a[at + 6],
        a[at + 7],
    ])
}

#[inline(always)]
fn bytes(hi: u64, lo: u64) -> [u8; 16] {
    let mut a = [0u8; 16];
    a[..8].copy_from_slice(&hi.to_le_bytes());
    a[8..].copy_from_slice(&lo.to_le_bytes());
    a
}

#[inline(always)]
const fn tail(sport: u16, dport: u16, proto: u8, version: u8, tag: u8) -> u64 {
    (sport as u64)
        | ((dport as u64) << 16)
        | ((proto as u64) << 32)
        | ((version as u64) << 40)
        | ((tag as u64) << 48)
}

/// Folded 64×64→128-bit multiply (the mixing step of wyhash).
#[inline(always)]
fn mum(a: u64, b: u64) -> u64 {
    let r = u128::from(a) * u128::from(b);
    (r as u64) ^ ((r >> 64) as u64)
}

const P: [u64; 4] = [
    0xa076_1d64_78bd_642f,
    0xe703_7ed1_a0b4_28db,
    0x8ebc_6af0_9c88_c6e3,
    0x5899_65cc_7537_4cc3,
];

impl FlowKey {
    /// A flow key.
    #[inline(always)]
    pub fn flow(
        version: u8,
        proto: u8,
        src: [u8; 16],
        sport: u16,
        dst: [u8; 16],
        dport: u16,
    ) -> FlowKey {
        FlowKey {
            w: [
                word(&src, 0),
                word(&src, 8),
                word(&dst, 0),
                word(&dst, 8),
                tail(sport, dport, proto, version, TAG_FLOW),
            ],
        }
    }

    /// An IPv4 flow key from the addresses as they lie in the header (network order): the
    /// same key as [`FlowKey::flow`] with the IPv4-mapped addresses, built without them.
    #[inline(always)]
    pub fn v4(proto: u8, src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16) -> FlowKey {
        // Bytes 8..16 of `::ffff:a.b.c.d` are 0, 0, ff, ff, a, b, c, d.
        let low = |a: [u8; 4]| (u64::from(u32::from_le_bytes(a)) << 32) | 0xffff_0000;
        FlowKey {
            w: [
                0,
                low(src),
                0,
                low(dst),
                tail(sport, dport, proto, 4, TAG_FLOW),
            ],
        }
    }

    /// The all-zero key.
    pub const ZERO: FlowKey = FlowKey { w: [0; 5] };

    /// Source address (16-byte form).
    #[inline]
    pub fn src(&self) -> [u8; 16] {
        bytes(self.w[0], self.w[1])
    }

    /// Destination address (16-byte form).
    #[inline]
    pub fn dst(&self) -> [u8; 16] {
        bytes(self.w[2], self.w[3])
    }

    /// Source port.
    #[inline]
    pub const fn sport(&self) -> u16 {
        self.w[4] as u16
    }

    /// Destination port.
    #[inline]
    pub const fn dport(&self) -> u16 {
        (self.w[4] >> 16) as u16
    }

    /// IP protocol number.
    #[inline]
    pub const fn proto(&self) -> u8 {
        (self.w[4] >> 32) as u8
    }

    /// IP version (4 or 6).
    #[inline]
    pub const fn version(&self) -> u8 {
        (self.w[4] >> 40) as u8
    }

    /// [`TAG_FLOW`] or [`TAG_TEMPLATE`].
    #[inline]
    pub const fn tag(&self) -> u8 {
        (self.w[4] >> 48) as u8
    }

    /// The same key with another tag.
    #[inline]
    pub const fn with_tag(self, tag: u8) -> FlowKey {
        let mut w = self.w;
        w[4] = (w[4] & !(0xff << 48)) | ((tag as u64) << 48);
        FlowKey { w }
    }

    /// The same key with other ports.
    #[inline]
    pub const fn with_ports(self, sport: u16, dport: u16) -> FlowKey {
        let mut w = self.w;
        w[4] = (w[4] & !0xffff_ffff) | (sport as u64) | ((dport as u64) << 16);
        FlowKey { w }
    }

    /// The same flow seen from the other end.
    #[inline]
    pub const fn reversed(&self) -> FlowKey {
        let t = self.w[4];
        let swapped = ((t & 0xffff) << 16) | ((t >> 16) & 0xffff) | (t & !0xffff_ffff);
        FlowKey {
            w: [self.w[2], self.w[3], self.w[0], self.w[1], swapped],
        }
    }

    /// True for a persistence template key.
    #[inline]
    pub const fn is_template(&self) -> bool {
        self.tag() == TAG_TEMPLATE
    }

    /// The key as five 64-bit words.
    #[inline(always)]
    pub const fn words(&self) -> [u64; 5] {
        self.w
    }

    /// A keyed hash of the whole key (two folded multiplies, wyhash style, and a final
    /// avalanche). The seed is random
    /// per table so that clients cannot aim at one bucket.
    #[inline(always)]
    pub fn hash(&self, seed: u64) -> u64 {
        let w = &self.w;
        let h = mum(w[0] ^ w[3] ^ seed ^ P[0], w[1] ^ w[2] ^ P[1]);
        let h = mum(h ^ w[4] ^ P[2], seed ^ P[3]);
        // Final avalanche so that every output bit depends on every input bit.
        (h ^ (h >> 29)).wrapping_mul(P[1]) ^ (h >> 32)
    }
}

impl core::fmt::Debug for FlowKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("FlowKey")
            .field("src", &core::net::Ipv6Addr::from(self.src()))
            .field("sport", &self.sport())
            .field("dst", &core::net::Ipv6Addr::from(self.dst()))
            .field("dport", &self.dport())
            .field("proto", &self.proto())
            .field("version", &self.version())
            .field("tag", &self.tag())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn size_is_forty_bytes() {
        assert_eq!(size_of::<FlowKey>(), 40);
    }

    proptest! {
        #[test]
        fn v4_is_the_mapped_flow_key(src: [u8; 4], dst: [u8; 4], sp: u16, dp: u16, p: u8) {
            let mapped = |a: [u8; 4]| {
                let mut m = [0u8; 16];
                m[10] = 0xff;
                m[11] = 0xff;
                m[12..].copy_from_slice(&a);
                m
            };
            prop_assert_eq!(
                FlowKey::v4(p, src, sp, dst, dp),
                FlowKey::flow(4, p, mapped(src), sp, mapped(dst), dp)
            );
        }

        #[test]
        fn fields_roundtrip(src: [u8; 16], dst: [u8; 16], sp: u16, dp: u16, p: u8, v: u8, tag: u8) {
            let k = FlowKey::flow(v, p, src, sp, dst, dp).with_tag(tag);
            prop_assert_eq!((k.src(), k.dst(), k.sport(), k.dport(), k.proto(), k.version(), k.tag()), (src, dst, sp, dp, p, v, tag));
            let r = k.reversed();
            prop_assert_eq!((r.src(), r.dst(), r.sport(), r.dport(), r.proto(), r.tag()), (dst, src, dp, sp, p, tag));
            prop_assert_eq!(r.reversed(), k);
        }

        #[test]
        fn hash_separates_keys(src: [u8; 16], sp: u16, dp: u16, bit in 0usize..128) {
            let k = FlowKey::flow(4, 6, src, sp, [1; 16], dp);
            let mut s2 = src;
            s2[bit / 8] ^= 1 << (bit % 8);
            let other = FlowKey::flow(4, 6, s2, sp, [1; 16], dp);
            prop_assert_ne!(k.hash(7), other.hash(7));
        }
    }

    #[test]
    fn hash_spreads_low_and_high_bits() {
        let (mut lo, mut hi) = (
            std::collections::HashSet::new(),
            std::collections::HashSet::new(),
        );
        for p in 0..1024u16 {
            let k = FlowKey::flow(4, 6, [9; 16], 10000 + p, [1; 16], 80);
            lo.insert(k.hash(1) & 255);
            hi.insert(k.hash(1) >> 56);
        }
        assert!(
            lo.len() > 240 && hi.len() > 240,
            "{} {}",
            lo.len(),
            hi.len()
        );
    }
}
