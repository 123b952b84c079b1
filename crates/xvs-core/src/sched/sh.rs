//! Source hashing (`sh`): a 256-bucket table filled in proportion to weight, indexed by a hash
//! of the client address (and port with `sh-port`). With `sh-fallback` an unavailable server's
//! clients move to the next available bucket; without it they get no server.

use super::hash::{addr_fold, hash_32};
use super::{Dests, Params, Request, SchedFlags, Scheduler};

/// log2 of the table size (the kernel's `IP_VS_SH_TAB_BITS`).
pub(super) const TAB_BITS: u32 = 8;
/// Table size.
pub(super) const TAB_SIZE: usize = 1 << TAB_BITS;

/// Fills the bucket table as `ip_vs_sh_reassign` does, each server taking as many
/// consecutive buckets as its weight (at least one), but with the servers in address order
/// rather than the order they were added: every director builds the same table.
pub(super) fn fill_table(d: &Dests<'_>) -> Option<Box<[u16; TAB_SIZE]>> {
    if d.is_empty() {
        return None;
    }
    let order = d.by_address();
    let mut t = Box::new([0u16; TAB_SIZE]);
    let (mut p, mut count) = (0usize, 0u32);
    for b in t.iter_mut() {
        *b = order[p] as u16;
        count += 1;
        if count >= d.weight(order[p]) {
            p = (p + 1) % order.len();
            count = 0;
        }
    }
    Some(t)
}

struct SourceHash {
    table: Option<Box<[u16; TAB_SIZE]>>,
    fallback: bool,
    port: bool,
}

pub(super) fn build(d: &Dests<'_>, p: &Params) -> Box<dyn Scheduler> {
    Box::new(SourceHash {
        table: fill_table(d),
        fallback: p.flags.has(SchedFlags::SH_FALLBACK),
        port: p.flags.has(SchedFlags::SH_PORT),
    })
}

fn bucket(fold: u32, port: u16, offset: u32) -> usize {
    (offset.wrapping_add(hash_32(u32::from(port).wrapping_add(fold), TAB_BITS)) as usize) % TAB_SIZE
}

impl Scheduler for SourceHash {
    fn schedule(&mut self, d: &Dests<'_>, r: &Request<'_>) -> Option<usize> {
        let t = self.table.as_ref()?;
        let fold = addr_fold(r.src, r.v6);
        let port = if self.port { r.sport } else { 0 };
        let first = bucket(fold, port, 0);
        let i = usize::from(t[first]);
        if d.available(i) {
            return Some(i);
        }
        if !self.fallback {
            return None;
        }
        (0..TAB_SIZE as u32)
            .map(|off| usize::from(t[bucket(fold, port, (off + first as u32) % TAB_SIZE as u32)]))
            .find(|&i| d.available(i))
    }
}

#[cfg(test)]
mod tests {
    use super::super::SchedFlags;
    use super::super::testutil::*;

    #[test]
    fn same_client_same_server_and_weighted_spread() {
        let fx = Fixture::new(&[1, 2, 1]);
        let mut s = fx.build("sh", 0);
        for k in 0..200 {
            let first = fx.pick(s.as_mut(), client(k), 1000);
            for port in [1001, 40000, 65535] {
                assert_eq!(
                    fx.pick(s.as_mut(), client(k), port),
                    first,
                    "sh is per source"
                );
            }
        }
        let h = fx.histogram(s.as_mut(), 4000);
        assert!(
            h[1] > h[0] && h[1] > h[2],
            "weight 2 gets twice the buckets: {h:?}"
        );
    }

    #[test]
    fn sh_and_dh_pick_the_same_server_whatever_order_the_servers_came_in() {
        let servers = [("198.18.1.13", 2), ("198.18.1.11", 1), ("198.18.1.12", 3)];
        let mut other = servers;
        other.rotate_left(1);
        let (a, b) = (
            Fixture::with_servers(&servers),
            Fixture::with_servers(&other),
        );
        let addr = |fx: &Fixture, i: usize| fx.dests().real(i).unwrap().addr;
        for name in ["sh", "dh"] {
            let (mut sa, mut sb) = (a.build(name, 0), b.build(name, 0));
            for k in 0..1000 {
                let dst = client(50_000 + k);
                let x = a.pick_to(sa.as_mut(), client(k), 1, dst, 0).unwrap();
                let y = b.pick_to(sb.as_mut(), client(k), 1, dst, 0).unwrap();
                assert_eq!(addr(&a, x), addr(&b, y), "{name}, flow {k}");
            }
        }
    }

    #[test]
    fn port_flag_spreads_one_client() {
        let fx = Fixture::new(&[1, 1, 1]);
        let mut s = fx.build("sh", SchedFlags::SH_PORT);
        let picks: std::collections::HashSet<_> = (0..64)
            .map(|p| fx.pick(s.as_mut(), client(1), 2000 + p))
            .collect();
        assert!(picks.len() > 1);
    }

    #[test]
    fn fallback_only_when_asked() {
        let fx = Fixture::with_thresholds(&[1, 1], &[(1, 0), (0, 0)]);
        let mut plain = fx.build("sh", 0);
        let mut fb = fx.build("sh", SchedFlags::SH_FALLBACK);
        let k = (0..100)
            .find(|&k| fx.pick(plain.as_mut(), client(k), 1) == Some(0))
            .unwrap();
        fx.set_conns(0, 1, 0); // server 0 overloaded
        assert_eq!(fx.pick(plain.as_mut(), client(k), 1), None);
        assert_eq!(fx.pick(fb.as_mut(), client(k), 1), Some(1));
    }
}
