//! Shortest expected delay (`sed`): the smallest `(active + 1) / weight`.

use super::{Dests, Params, Request, Scheduler, weighted_least};

struct ShortestExpectedDelay;

pub(super) fn build(_: &Dests<'_>, _: &Params) -> Box<dyn Scheduler> {
    Box::new(ShortestExpectedDelay)
}

impl Scheduler for ShortestExpectedDelay {
    fn schedule(&mut self, d: &Dests<'_>, _: &Request<'_>) -> Option<usize> {
        weighted_least(d, |i| u64::from(d.active(i)) + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;

    #[test]
    fn ignores_inactive_and_prefers_heavier() {
        let fx = Fixture::new(&[1, 3]);
        fx.set_conns(0, 0, 50); // (0+1)/1 = 1
        fx.set_conns(1, 2, 0); // (2+1)/3 = 1: tie, first wins
        let mut s = fx.build("sed", 0);
        assert_eq!(fx.pick(s.as_mut(), client(0), 1), Some(0));
        fx.set_conns(1, 1, 0); // 2/3 < 1
        assert_eq!(fx.pick(s.as_mut(), client(0), 1), Some(1));
    }
}
