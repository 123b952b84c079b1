//! Maglev hashing (`mh`): a prime-sized lookup table (4093 entries, the kernel's default
//! `CONFIG_IP_VS_MH_TAB_INDEX`) filled from per-server permutations, each server taking turns
//! in proportion to its weight. Removing one of N servers moves about 1/N of the clients.
//! `mh-port` hashes the source port too; `mh-fallback` moves an unavailable server's clients
//! to the next available entry.
//!
//! The table depends only on the servers' addresses, ports and weights: servers take their
//! turns in address order and the hash seeds are fixed, so every director of a scale-out group
//! picks the same server for a flow (the kernel's table follows insertion order instead).

use super::hash::{addr_port_hash, mix64};
use super::{Dests, Params, Request, SchedFlags, Scheduler};

/// Lookup-table size: a prime.
pub(super) const TAB_SIZE: usize = 4093;
const NONE: u16 = u16::MAX;
const SEED_OFFSET: u64 = 0x6d68_5f6f_6666_7365;
const SEED_SKIP: u64 = 0x6d68_5f73_6b69_7000;
const SEED_LOOKUP: u64 = 0x6d68_5f6c_6f6f_6b75;

struct Maglev {
    table: Box<[u16]>,
    fallback: bool,
    port: bool,
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// Builds the lookup table (one entry per slot, index into the destinations).
fn populate(d: &Dests<'_>) -> Box<[u16]> {
    let mut table = vec![NONE; TAB_SIZE].into_boxed_slice();
    let n = d.len();
    let g = (0..n).map(|i| d.weight(i)).fold(0, gcd);
    if n == 0 || g == 0 {
        return table;
    }
    // Turns per round: weight / gcd, scaled down so a round stays below the table size.
    let max = (0..n).map(|i| d.weight(i) / g).max().unwrap_or(1);
    let shift = (32 - max.leading_zeros()).saturating_sub(8);
    let mut turns: Vec<u32> = (0..n).map(|i| (d.weight(i) / g) >> shift).collect();
    for (i, t) in turns.iter_mut().enumerate() {
        if *t == 0 && d.weight(i) > 0 {
            *t = 1;
        }
    }
    let m = TAB_SIZE as u64;
    // Turns in address order (positions in `order`), whatever order the servers came in.
    let order = d.by_address();
    let turns: Vec<u32> = order.iter().map(|&i| turns[i]).collect();
    let mut perm = Vec::with_capacity(n);
    let mut skip = Vec::with_capacity(n);
    for &i in &order {
        let (addr, port) = d.real(i).map_or(([0; 16], 0), |r| (r.addr16(), r.port));
        perm.push(addr_port_hash(&addr, port, SEED_OFFSET) % m);
        skip.push(addr_port_hash(&addr, port, SEED_SKIP) % (m - 1) + 1);
    }
    let (mut filled, mut i, mut turn) = (0usize, 0usize, 0u32);
    while filled < TAB_SIZE {
        if turns[i] == 0 {
            i = (i + 1) % n;
            continue;
        }
        let mut c = perm[i];
        while table[c as usize] != NONE {
            c = (c + skip[i]) % m;
        }
        table[c as usize] = order[i] as u16;
        perm[i] = (c + skip[i]) % m;
        filled += 1;
        turn += 1;
        if turn >= turns[i] {
            turn = 0;
            i = (i + 1) % n;
        }
    }
    table
}

pub(super) fn build(d: &Dests<'_>, p: &Params) -> Box<dyn Scheduler> {
    Box::new(Maglev {
        table: populate(d),
        fallback: p.flags.has(SchedFlags::MH_FALLBACK),
        port: p.flags.has(SchedFlags::MH_PORT),
    })
}

impl Scheduler for Maglev {
    fn schedule(&mut self, d: &Dests<'_>, r: &Request<'_>) -> Option<usize> {
        let port = if self.port { r.sport } else { 0 };
        let h = addr_port_hash(r.src, port, SEED_LOOKUP);
        let first = (h % TAB_SIZE as u64) as usize;
        let i = self.table[first];
        if i == NONE {
            return None;
        }
        if d.available(usize::from(i)) {
            return Some(usize::from(i));
        }
        if !self.fallback {
            return None;
        }
        (0..TAB_SIZE as u64)
            .map(|off| self.table[(mix64(h ^ (off + first as u64)) % TAB_SIZE as u64) as usize])
            .take_while(|&i| i != NONE)
            .map(usize::from)
            .find(|&i| d.available(i))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::super::{Dests, SchedFlags};
    use super::*;

    fn share(d: &Dests<'_>) -> Vec<usize> {
        let t = populate(d);
        let mut s = vec![0; d.len()];
        for &i in t.iter() {
            s[usize::from(i)] += 1;
        }
        s
    }

    #[test]
    fn table_respects_weights() {
        let fx = Fixture::new(&[1, 2, 1]);
        let s = share(&fx.dests());
        assert_eq!(s.iter().sum::<usize>(), TAB_SIZE);
        let quarter = TAB_SIZE / 4;
        assert!(
            s[0].abs_diff(quarter) < 20 && s[2].abs_diff(quarter) < 20,
            "{s:?}"
        );
        assert!(s[1].abs_diff(2 * quarter) < 20, "{s:?}");
    }

    #[test]
    fn removing_one_of_n_moves_about_one_nth() {
        let n = 10;
        let full = Fixture::new(&vec![1; n]);
        let mut a = full.build("mh", 0);
        // The same servers minus the last one: same addresses, same permutations.
        let less = Fixture::new(&vec![1; n - 1]);
        let mut b = less.build("mh", 0);
        let (mut moved, mut kept_elsewhere) = (0, 0);
        let clients = 20_000;
        for k in 0..clients {
            let x = full.pick(a.as_mut(), client(k), 1).unwrap();
            let y = less.pick(b.as_mut(), client(k), 1).unwrap();
            if x != y {
                moved += 1;
                if x != n - 1 {
                    kept_elsewhere += 1;
                }
            }
        }
        let frac = f64::from(moved) / f64::from(clients);
        assert!(frac > 0.07 && frac < 0.16, "moved {frac}");
        // Maglev's minimal disruption: few clients of surviving servers move.
        assert!(
            f64::from(kept_elsewhere) / f64::from(clients) < 0.05,
            "{kept_elsewhere}"
        );
    }

    #[test]
    fn the_same_servers_in_any_order_give_the_same_picks() {
        let servers = [
            ("198.18.1.11", 3),
            ("198.18.1.12", 1),
            ("198.18.1.13", 2),
            ("198.18.1.4", 1),
        ];
        let mut shuffled = servers;
        shuffled.reverse();
        shuffled.swap(0, 2);
        let (a, b) = (
            Fixture::with_servers(&servers),
            Fixture::with_servers(&shuffled),
        );
        let (mut sa, mut sb) = (a.build("mh", 0), b.build("mh", 0));
        let addr = |fx: &Fixture, i: usize| fx.dests().real(i).unwrap().addr;
        for k in 0..2000 {
            let x = a.pick(sa.as_mut(), client(k), 1).unwrap();
            let y = b.pick(sb.as_mut(), client(k), 1).unwrap();
            assert_eq!(addr(&a, x), addr(&b, y), "client {k}");
        }
    }

    #[test]
    fn port_flag_and_fallback() {
        let fx = Fixture::with_thresholds(&[1, 1, 1], &[(1, 0), (0, 0), (0, 0)]);
        let mut plain = fx.build("mh", 0);
        let mut fb = fx.build("mh", SchedFlags::MH_FALLBACK);
        let k = (0..200)
            .find(|&k| fx.pick(plain.as_mut(), client(k), 1) == Some(0))
            .unwrap();
        fx.set_conns(0, 1, 0);
        assert_eq!(fx.pick(plain.as_mut(), client(k), 1), None);
        assert!(matches!(fx.pick(fb.as_mut(), client(k), 1), Some(1 | 2)));
        let fx = Fixture::new(&[1, 1, 1]);
        let mut s = fx.build("mh", SchedFlags::MH_PORT);
        let picks: std::collections::HashSet<_> = (0..64)
            .map(|p| fx.pick(s.as_mut(), client(1), 3000 + p))
            .collect();
        assert!(picks.len() > 1);
    }
}
