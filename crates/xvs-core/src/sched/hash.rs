//! Hash functions shared by the hashing schedulers (sh, dh, mh, lblc).

/// The kernel's `GOLDEN_RATIO_32`, used by `hash_32`.
const GOLDEN_RATIO_32: u32 = 0x61C8_8647;

/// The kernel's `hash_32(val, bits)`.
#[inline]
pub(super) fn hash_32(val: u32, bits: u32) -> u32 {
    val.wrapping_mul(GOLDEN_RATIO_32) >> (32 - bits)
}

/// Folds an address to 32 bits as IPVS does: the IPv4 address itself, or the XOR of the four
/// 32-bit words of an IPv6 address.
#[inline]
pub(super) fn addr_fold(a: &[u8; 16], v6: bool) -> u32 {
    let w = |i: usize| u32::from_be_bytes([a[i], a[i + 1], a[i + 2], a[i + 3]]);
    if v6 {
        w(0) ^ w(4) ^ w(8) ^ w(12)
    } else {
        w(12)
    }
}

/// A 64-bit mix (splitmix64 finaliser) for deriving Maglev permutations.
#[inline]
pub(super) fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Hashes an address and port with a seed.
#[inline]
pub(super) fn addr_port_hash(a: &[u8; 16], port: u16, seed: u64) -> u64 {
    let hi = u64::from_be_bytes([a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]]);
    let lo = u64::from_be_bytes([a[8], a[9], a[10], a[11], a[12], a[13], a[14], a[15]]);
    mix64(mix64(seed ^ hi) ^ lo ^ (u64::from(port) << 48))
}

/// A tiny deterministic PRNG (xorshift64*), per worker, for the twos scheduler.
#[derive(Debug, Clone)]
pub(super) struct Rng(u64);

impl Rng {
    pub(super) fn new(seed: u64) -> Rng {
        Rng(mix64(seed) | 1)
    }

    /// A value uniformly below `n` (n > 0), by multiply-shift.
    pub(super) fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let r = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d);
        ((u128::from(r) * u128::from(n)) >> 64) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_32_matches_kernel_definition() {
        assert_eq!(hash_32(0, 8), 0);
        assert_eq!(hash_32(1, 32), GOLDEN_RATIO_32);
        assert!(hash_32(u32::MAX, 8) < 256);
    }

    #[test]
    fn fold_v4_and_v6() {
        let v4 = xvs_wire::summary::v4_mapped([198, 18, 0, 1]);
        assert_eq!(addr_fold(&v4, false), 0xc612_0001);
        let mut v6 = [0u8; 16];
        v6[3] = 1;
        v6[15] = 2;
        assert_eq!(addr_fold(&v6, true), 3);
    }

    #[test]
    fn rng_stays_below() {
        let mut r = Rng::new(7);
        let mut seen = [false; 5];
        for _ in 0..1000 {
            let v = r.below(5);
            assert!(v < 5);
            seen[v as usize] = true;
        }
        assert!(seen.iter().all(|s| *s));
    }
}
