//! Weighted failover (`fo`): the available server with the highest weight.

use super::{Dests, Params, Request, Scheduler};

struct Failover;

pub(super) fn build(_: &Dests<'_>, _: &Params) -> Box<dyn Scheduler> {
    Box::new(Failover)
}

impl Scheduler for Failover {
    fn schedule(&mut self, d: &Dests<'_>, _: &Request<'_>) -> Option<usize> {
        let mut best: Option<(usize, u32)> = None;
        for i in 0..d.len() {
            let w = d.weight(i);
            if w > best.map_or(0, |b| b.1) && !d.overloaded(i) {
                best = Some((i, w));
            }
        }
        best.map(|b| b.0)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;

    #[test]
    fn highest_weight_until_it_fails() {
        let fx = Fixture::with_thresholds(&[5, 9, 7], &[(0, 0), (1, 0), (0, 0)]);
        let mut s = fx.build("fo", 0);
        assert_eq!(fx.pick(s.as_mut(), client(0), 1), Some(1));
        fx.set_conns(1, 1, 0); // reaches its threshold of 1
        assert_eq!(fx.pick(s.as_mut(), client(0), 1), Some(2));
    }
}
