//! Internet checksum (RFC 1071), pseudo headers, and incremental update (RFC 1624).
//!
//! Sums are accumulated in a `u64` over big-endian 32-bit words and folded at the end; because
//! 2^16 ≡ 1 (mod 2^16 − 1) this equals the ones-complement sum of 16-bit words.

/// Ones-complement partial sum of `data` (an odd trailing byte is padded with zero).
#[inline]
pub fn sum(data: &[u8]) -> u64 {
    let mut acc: u64 = 0;
    let mut words = data.chunks_exact(4);
    for w in &mut words {
        acc += u64::from(u32::from_be_bytes([w[0], w[1], w[2], w[3]]));
    }
    let rest = words.remainder();
    let mut i = 0;
    while i + 1 < rest.len() {
        acc += u64::from(u16::from_be_bytes([rest[i], rest[i + 1]]));
        i += 2;
    }
    if i < rest.len() {
        acc += u64::from(rest[i]) << 8;
    }
    acc
}

/// Folds a partial sum to 16 bits with end-around carry.
#[inline]
pub fn fold(mut acc: u64) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// The Internet checksum of `data`: the complement of its folded sum.
#[inline]
pub fn checksum(data: &[u8]) -> u16 {
    !fold(sum(data))
}

/// Partial sum of the IPv4 pseudo header for an upper-layer segment of `len` bytes.
#[inline]
pub fn pseudo_v4(src: [u8; 4], dst: [u8; 4], proto: u8, len: u16) -> u64 {
    u64::from(u32::from_be_bytes(src))
        + u64::from(u32::from_be_bytes(dst))
        + u64::from(proto)
        + u64::from(len)
}

/// Partial sum of the IPv6 pseudo header (RFC 8200 §8.1).
#[inline]
pub fn pseudo_v6(src: [u8; 16], dst: [u8; 16], next_header: u8, len: u32) -> u64 {
    sum(&src) + sum(&dst) + u64::from(len) + u64::from(next_header)
}

/// Upper-layer checksum over an IPv4 pseudo header and `segment` as it stands.
///
/// With the checksum field zeroed the result is the value to store; with the field filled in, a
/// correct segment yields zero.
#[inline]
pub fn l4_v4(src: [u8; 4], dst: [u8; 4], proto: u8, segment: &[u8]) -> u16 {
    let len = u16::try_from(segment.len()).unwrap_or(u16::MAX);
    !fold(pseudo_v4(src, dst, proto, len) + sum(segment))
}

/// Upper-layer checksum over an IPv6 pseudo header and `segment` as it stands.
#[inline]
pub fn l4_v6(src: [u8; 16], dst: [u8; 16], next_header: u8, segment: &[u8]) -> u16 {
    let len = u32::try_from(segment.len()).unwrap_or(u32::MAX);
    !fold(pseudo_v6(src, dst, next_header, len) + sum(segment))
}

/// RFC 1624 equation 3: the new checksum after one 16-bit word changed from `old` to `new`.
#[inline(always)]
pub fn update16(hc: u16, old: u16, new: u16) -> u16 {
    let acc = u64::from(!hc) + u64::from(!old) + u64::from(new);
    !fold(acc)
}

/// RFC 1624 equation 3 for a run of 16-bit words (an address, a port pair).
///
/// `old` and `new` must have the same even length.
#[inline(always)]
pub fn update(hc: u16, old: &[u8], new: &[u8]) -> u16 {
    debug_assert_eq!(old.len(), new.len());
    debug_assert_eq!(old.len() % 2, 0);
    let mut acc = u64::from(!hc);
    let mut i = 0;
    while i + 1 < old.len() && i + 1 < new.len() {
        acc += u64::from(!u16::from_be_bytes([old[i], old[i + 1]]));
        acc += u64::from(u16::from_be_bytes([new[i], new[i + 1]]));
        i += 2;
    }
    !fold(acc)
}

/// Incremental update for a UDP checksum, honouring the zero-checksum rule of RFC 768: a zero
/// checksum means "none was computed" and stays zero; a computed zero is sent as `0xffff`.
#[inline(always)]
pub fn update_udp(hc: u16, old: &[u8], new: &[u8]) -> u16 {
    if hc == 0 {
        return 0;
    }
    match update(hc, old, new) {
        0 => 0xffff,
        v => v,
    }
}

/// Maps a freshly computed UDP checksum of zero to `0xffff` (RFC 768, RFC 8200 §8.1).
#[inline(always)]
pub const fn udp_final(c: u16) -> u16 {
    if c == 0 { 0xffff } else { c }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rfc1071_example() {
        // The example of RFC 1071 §3: words 0001 f203 f4f5 f6f7 sum to ddf2 (folded).
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(sum(&data)), 0xddf2);
        assert_eq!(checksum(&data), !0xddf2);
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(fold(sum(&[0xab])), 0xab00);
        assert_eq!(fold(sum(&[0x12, 0x34, 0x56])), 0x1234 + 0x5600);
    }

    #[test]
    fn known_ipv4_header() {
        // A classic example header (Wikipedia "IPv4 header checksum").
        let hdr = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(checksum(&hdr), 0);
        let mut zeroed = hdr;
        zeroed[10] = 0;
        zeroed[11] = 0;
        assert_eq!(checksum(&zeroed), 0xb861);
    }

    #[test]
    fn udp_zero_rules() {
        assert_eq!(update_udp(0, &[1, 2], &[3, 4]), 0, "no checksum stays none");
        assert_eq!(udp_final(0), 0xffff);
        assert_eq!(udp_final(0x1234), 0x1234);
    }

    proptest! {
        /// Rewriting any aligned run of a buffer and updating incrementally gives the same
        /// checksum as recomputing from scratch (modulo the two representations of zero).
        #[test]
        fn incremental_matches_full(
            mut data in proptest::collection::vec(any::<u8>(), 2..200),
            at in 0usize..100,
            new in proptest::collection::vec(any::<u8>(), 2..=16),
        ) {
            let len = data.len() & !1;
            data.truncate(len);
            let words = (new.len() / 2).max(1) * 2;
            let at = (at % len) & !1;
            prop_assume!(at + words <= len);
            let before = checksum(&data);
            let old: Vec<u8> = data[at..at + words].to_vec();
            data[at..at + words].copy_from_slice(&new[..words]);
            let inc = update(before, &old, &new[..words]);
            let full = checksum(&data);
            // 0x0000 and 0xffff are the same ones-complement value.
            prop_assert!(inc == full || (inc == 0xffff && full == 0) || (inc == 0 && full == 0xffff),
                "inc {inc:#06x} full {full:#06x}");
        }

        #[test]
        fn update16_matches_update(hc: u16, old: u16, new: u16) {
            prop_assert_eq!(update16(hc, old, new), update(hc, &old.to_be_bytes(), &new.to_be_bytes()));
        }
    }
}
