//! Locality-based least connection with replication (`lblcr`): each destination address has a
//! set of servers; the least loaded member serves it, and when that member is overloaded a new
//! server (by wlc) joins the set. A set that has not changed for 24 hours sheds its most loaded
//! member.

use super::lblc::{EXPIRATION, MAX_ENTRIES, locality_overloaded};
use super::{Dests, Params, Request, Scheduler, weighted_least};
use rustc_hash::FxHashMap;

/// Most members of one destination's server set.
const MAX_SET: usize = 16;

#[derive(Clone, Copy)]
struct DestSet {
    members: [u16; MAX_SET],
    len: u8,
    lastmod: u32,
    lastuse: u32,
}

impl DestSet {
    fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.members[..usize::from(self.len)]
            .iter()
            .map(|&m| usize::from(m))
    }

    fn insert(&mut self, i: usize, now: u32) {
        if self.iter().any(|m| m == i) {
            return;
        }
        if usize::from(self.len) == MAX_SET {
            self.members.copy_within(1.., 0);
            self.len -= 1;
        }
        self.members[usize::from(self.len)] = i as u16;
        self.len += 1;
        self.lastmod = now;
    }

    fn remove(&mut self, i: usize) {
        let pos = self.iter().position(|m| m == i);
        if let Some(pos) = pos {
            self.members.copy_within(pos + 1.., pos);
            self.len -= 1;
        }
    }
}

struct Lblcr {
    map: FxHashMap<[u8; 16], DestSet>,
}

pub(super) fn build(_: &Dests<'_>, _: &Params) -> Box<dyn Scheduler> {
    let mut map = FxHashMap::default();
    map.reserve(MAX_ENTRIES);
    Box::new(Lblcr { map })
}

/// The member with the least `overhead / weight` (the kernel's `ip_vs_dest_set_min`).
fn set_min(d: &Dests<'_>, set: &DestSet) -> Option<usize> {
    let mut best: Option<(usize, u64, u64)> = None;
    for i in set.iter().filter(|&i| i < d.len()) {
        let w = u64::from(d.weight(i));
        if w == 0 || d.overloaded(i) {
            continue;
        }
        let oh = d.overhead(i);
        if best.is_none_or(|(_, loh, lw)| {
            u128::from(loh) * u128::from(w) > u128::from(oh) * u128::from(lw)
        }) {
            best = Some((i, oh, w));
        }
    }
    best.map(|b| b.0)
}

/// The member with the most `overhead / weight` (the kernel's `ip_vs_dest_set_max`).
fn set_max(d: &Dests<'_>, set: &DestSet) -> Option<usize> {
    let mut best: Option<(usize, u64, u64)> = None;
    for i in set.iter().filter(|&i| i < d.len()) {
        let w = u64::from(d.weight(i));
        let oh = d.overhead(i);
        if best.is_none_or(|(_, moh, mw)| {
            w > 0 && u128::from(oh) * u128::from(mw) > u128::from(moh) * u128::from(w)
        }) {
            best = Some((i, oh, w));
        }
    }
    best.map(|b| b.0)
}

impl Scheduler for Lblcr {
    fn schedule(&mut self, d: &Dests<'_>, r: &Request<'_>) -> Option<usize> {
        if let Some(set) = self.map.get_mut(r.dst) {
            set.lastuse = r.now;
            let min = set_min(d, set);
            if set.len > 1 && r.now.saturating_sub(set.lastmod) > EXPIRATION {
                if let Some(m) = set_max(d, set) {
                    set.remove(m);
                    set.lastmod = r.now;
                }
            }
            if let Some(i) = min {
                if !locality_overloaded(d, i) {
                    return Some(i);
                }
            }
            let i = weighted_least(d, |i| d.overhead(i))?;
            set.insert(i, r.now);
            return Some(i);
        }
        let i = weighted_least(d, |i| d.overhead(i))?;
        if self.map.len() >= MAX_ENTRIES {
            self.map
                .retain(|_, s| r.now.saturating_sub(s.lastuse) < EXPIRATION);
            if self.map.len() >= MAX_ENTRIES {
                self.map.clear();
            }
        }
        let mut set = DestSet {
            members: [0; MAX_SET],
            len: 0,
            lastmod: r.now,
            lastuse: r.now,
        };
        set.insert(i, r.now);
        self.map.insert(*r.dst, set);
        Some(i)
    }
}

#[cfg(test)]
mod tests {
    use super::super::Request;
    use super::super::testutil::*;

    #[test]
    fn set_grows_under_load_and_serves_least_loaded_member() {
        let fx = Fixture::new(&[1, 1, 1]);
        let mut s = fx.build("lblcr", 0);
        let dst = client(900);
        let mut pick = |now: u32| {
            s.schedule(
                &fx.dests(),
                &Request {
                    src: &client(1),
                    dst: &dst,
                    sport: 1,
                    dport: 80,
                    v6: false,
                    now,
                },
            )
        };
        let a = pick(10).unwrap();
        fx.set_conns(a, 2, 0); // overloaded: active 2 > weight 1 while others idle
        let b = pick(11).unwrap();
        assert_ne!(a, b);
        // Both now in the set; with a back to idle it is the least loaded member again.
        fx.set_conns(a, 0, 0);
        fx.set_conns(b, 1, 0);
        assert_eq!(pick(12), Some(a));
        // After the expiration the most loaded member leaves the set.
        fx.set_conns(a, 0, 0);
        fx.set_conns(b, 1, 5);
        assert_eq!(pick(12 + super::EXPIRATION + 1), Some(a));
        fx.set_conns(a, 1, 9);
        fx.set_conns(b, 0, 0);
        assert_eq!(
            pick(12 + super::EXPIRATION + 2),
            Some(a),
            "b was shed from the set"
        );
    }
}
