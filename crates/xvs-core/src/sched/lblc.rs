//! Locality-based least connection (`lblc`): a destination address keeps its server unless
//! that server is quiesced or overloaded (more active connections than its weight while some
//! server is below half its weight); then wlc picks a new one. Entries expire after 24 hours
//! unused, as the kernel's `lblc_expiration`.

use super::{Dests, Params, Request, Scheduler, weighted_least};
use rustc_hash::FxHashMap;

/// Seconds an unused locality entry lives.
pub(super) const EXPIRATION: u32 = 24 * 60 * 60;
/// Most locality entries kept per worker and service (memory stays bounded).
pub(super) const MAX_ENTRIES: usize = 16384;

/// The kernel's `is_overloaded` of lblc/lblcr.
pub(super) fn locality_overloaded(d: &Dests<'_>, i: usize) -> bool {
    d.active(i) > d.weight(i)
        && (0..d.len()).any(|j| u64::from(d.active(j)) * 2 < u64::from(d.weight(j)))
}

struct Lblc {
    map: FxHashMap<[u8; 16], (u16, u32)>,
}

pub(super) fn build(_: &Dests<'_>, _: &Params) -> Box<dyn Scheduler> {
    let mut map = FxHashMap::default();
    map.reserve(MAX_ENTRIES);
    Box::new(Lblc { map })
}

impl Scheduler for Lblc {
    fn schedule(&mut self, d: &Dests<'_>, r: &Request<'_>) -> Option<usize> {
        if let Some((i, last)) = self.map.get_mut(r.dst) {
            let i = usize::from(*i);
            if i < d.len() && d.weight(i) > 0 && !d.overloaded(i) && !locality_overloaded(d, i) {
                *last = r.now;
                return Some(i);
            }
        }
        let i = weighted_least(d, |i| d.overhead(i))?;
        if self.map.len() >= MAX_ENTRIES && !self.map.contains_key(r.dst) {
            self.map
                .retain(|_, (_, last)| r.now.saturating_sub(*last) < EXPIRATION);
            if self.map.len() >= MAX_ENTRIES {
                self.map.clear();
            }
        }
        self.map.insert(*r.dst, (i as u16, r.now));
        Some(i)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;

    #[test]
    fn destination_sticks_until_overloaded() {
        let fx = Fixture::new(&[2, 2]);
        let mut s = fx.build("lblc", 0);
        let dst = client(500);
        let mut pick = |src: u32| fx.pick_to(s.as_mut(), client(src), 1, dst, 10);
        let first = pick(1).unwrap();
        fx.set_conns(first, 2, 0); // at its weight: not overloaded
        assert_eq!(pick(2), Some(first));
        fx.set_conns(first, 3, 0); // above weight while the other is idle
        let second = pick(3).unwrap();
        assert_ne!(second, first);
        fx.set_conns(first, 0, 0);
        assert_eq!(pick(4), Some(second), "the new server is remembered");
    }
}
