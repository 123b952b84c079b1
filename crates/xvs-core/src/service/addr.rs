//! Addresses in the forms keys and listings use.

use core::net::IpAddr;
use xvs_wire::summary::{V4_MAPPED_PREFIX, v4_mapped};

/// The 16-byte form of an address used in keys (IPv4 as `::ffff:a.b.c.d`).
pub fn addr16(a: &IpAddr) -> [u8; 16] {
    match a {
        IpAddr::V4(v4) => v4_mapped(v4.octets()),
        IpAddr::V6(v6) => v6.octets(),
    }
}

/// The 16-byte key form back to an address (`::ffff:a.b.c.d` is IPv4).
pub fn ip_from16(a: &[u8; 16]) -> IpAddr {
    if a[..12] == V4_MAPPED_PREFIX {
        IpAddr::from([a[12], a[13], a[14], a[15]])
    } else {
        IpAddr::from(*a)
    }
}

/// Formats `addr:port` with IPv6 in brackets, as ipvsadm does.
pub fn fmt_addr_port(a: &IpAddr, port: u16) -> String {
    match a {
        IpAddr::V4(v4) => format!("{v4}:{port}"),
        IpAddr::V6(v6) => format!("[{v6}]:{port}"),
    }
}

/// True if the first `bits` bits of `a` and `b` agree.
pub(crate) fn prefix_match(a: &[u8; 16], b: &[u8; 16], bits: u32) -> bool {
    let x = u128::from_be_bytes(*a) ^ u128::from_be_bytes(*b);
    bits == 0 || (bits >= 128 && x == 0) || (bits < 128 && (x >> (128 - bits)) == 0)
}

/// Applies a prefix mask to a 16-byte address.
pub(crate) fn mask_addr(a: &[u8; 16], bits: u32) -> [u8; 16] {
    let v = u128::from_be_bytes(*a);
    let m = if bits == 0 {
        0
    } else if bits >= 128 {
        u128::MAX
    } else {
        u128::MAX << (128 - bits)
    };
    (v & m).to_be_bytes()
}

/// True for an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`). xvs keys IPv4 in that form, so
/// such an address would stand for the IPv4 one: the service table refuses it everywhere.
pub fn is_v4_mapped(a: &IpAddr) -> bool {
    matches!(a, IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some())
}

/// [`ConfigError`](super::ConfigError) for an IPv4-mapped address given as `what`.
pub(crate) fn refuse_v4_mapped(what: &str, a: &IpAddr) -> Result<(), super::ConfigError> {
    if is_v4_mapped(a) {
        return Err(super::ConfigError::Invalid(format!(
            "{what} {a} is an IPv4-mapped IPv6 address: write it as IPv4 ({})",
            match a {
                IpAddr::V6(v6) => v6
                    .to_ipv4_mapped()
                    .map_or_else(String::new, |v4| v4.to_string()),
                IpAddr::V4(v4) => v4.to_string(),
            }
        )));
    }
    Ok(())
}
