//! The 5-tuple key of a connection-table entry.

/// Key tag of ordinary flows.
pub const TAG_FLOW: u8 = 0;
/// Key tag of persistence templates (client network → real server).
pub const TAG_TEMPLATE: u8 = 1;

/// A flow's identity as seen in one direction: addresses (16-byte form, IPv4 mapped), ports,
/// protocol, family and a tag separating persistence templates from flows. 40 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(C)]
pub struct FlowKey {
    /// Source address.
    pub src: [u8; 16],
    /// Destination address.
    pub dst: [u8; 16],
    /// Source port (0 for templates).
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// IP protocol number.
    pub proto: u8,
    /// 4 or 6.
    pub version: u8,
    /// [`TAG_FLOW`] or [`TAG_TEMPLATE`].
    pub tag: u8,
    /// Padding (always zero).
    pub pad: u8,
}

#[inline(always)]
fn half(a: &[u8; 16], hi: bool) -> u64 {
    let o = if hi { 0 } else { 8 };
    u64::from_le_bytes([
        a[o],
        a[o + 1],
        a[o + 2],
        a[o + 3],
        a[o + 4],
        a[o + 5],
        a[o + 6],
        a[o + 7],
    ])
}

const K: u64 = 0x9e37_79b9_7f4a_7c15;

impl FlowKey {
    /// A flow key.
    #[inline]
    pub const fn flow(
        version: u8,
        proto: u8,
        src: [u8; 16],
        sport: u16,
        dst: [u8; 16],
        dport: u16,
    ) -> FlowKey {
        FlowKey {
            src,
            dst,
            sport,
            dport,
            proto,
            version,
            tag: TAG_FLOW,
            pad: 0,
        }
    }

    /// The same flow seen from the other end.
    #[inline]
    pub const fn reversed(&self) -> FlowKey {
        FlowKey {
            src: self.dst,
            dst: self.src,
            sport: self.dport,
            dport: self.sport,
            ..*self
        }
    }

    /// True for a persistence template key.
    pub const fn is_template(&self) -> bool {
        self.tag == TAG_TEMPLATE
    }

    /// A keyed hash of the whole key: multiply-xor over its five words, then a 64-bit
    /// finaliser. The seed is random per table so that clients cannot aim at one bucket.
    #[inline(always)]
    pub fn hash(&self, seed: u64) -> u64 {
        let tail = u64::from(self.sport)
            | (u64::from(self.dport) << 16)
            | (u64::from(self.proto) << 32)
            | (u64::from(self.version) << 40)
            | (u64::from(self.tag) << 48);
        let mut h = seed;
        for w in [
            half(&self.src, true),
            half(&self.src, false),
            half(&self.dst, true),
            half(&self.dst, false),
            tail,
        ] {
            h = (h ^ w).wrapping_mul(K).rotate_left(29);
        }
        h ^= h >> 32;
        h = h.wrapping_mul(0xd6e8_feb8_6659_fd93);
        h ^ (h >> 32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn size_is_forty_bytes() {
        assert_eq!(core::mem::size_of::<FlowKey>(), 40);
    }

    proptest! {
        #[test]
        fn reversed_twice_is_identity(src: [u8; 16], dst: [u8; 16], sp: u16, dp: u16, p: u8) {
            let k = FlowKey::flow(6, p, src, sp, dst, dp);
            prop_assert_eq!(k.reversed().reversed(), k);
        }

        #[test]
        fn hash_separates_keys(src: [u8; 16], sp: u16, dp: u16, bit in 0usize..128) {
            let k = FlowKey::flow(4, 6, src, sp, [1; 16], dp);
            let mut other = k;
            other.src[bit / 8] ^= 1 << (bit % 8);
            prop_assert_ne!(k.hash(7), other.hash(7));
        }
    }

    #[test]
    fn hash_spreads_low_bits() {
        // Sequential client ports must spread over buckets (low bits used for indexing).
        let mut seen = std::collections::HashSet::new();
        for p in 0..1024u16 {
            let k = FlowKey::flow(4, 6, [9; 16], 10000 + p, [1; 16], 80);
            seen.insert(k.hash(1) & 255);
        }
        assert!(seen.len() > 240, "{}", seen.len());
    }
}
