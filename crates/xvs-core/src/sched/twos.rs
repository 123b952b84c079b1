//! Weighted random twos choice (`twos`): two servers drawn at random in proportion to weight;
//! the one with the lower `overhead / weight` wins.

use super::hash::Rng;
use super::{Dests, Params, Request, Scheduler};

struct TwoChoices {
    rng: Rng,
}

pub(super) fn build(_: &Dests<'_>, p: &Params) -> Box<dyn Scheduler> {
    Box::new(TwoChoices {
        rng: Rng::new(p.seed),
    })
}

impl Scheduler for TwoChoices {
    fn schedule(&mut self, d: &Dests<'_>, _: &Request<'_>) -> Option<usize> {
        let usable = |i: usize| d.weight(i) > 0 && !d.overloaded(i);
        let total: u64 = (0..d.len())
            .filter(|&i| usable(i))
            .map(|i| u64::from(d.weight(i)))
            .sum();
        if total == 0 {
            return None;
        }
        // As the kernel: random weights in 0..=total, then walk the cumulative weights.
        let mut r1 = self.rng.below(total + 1) as i64;
        let mut r2 = self.rng.below(total + 1) as i64;
        let (mut c1, mut c2) = (None, None);
        for i in (0..d.len()).filter(|&i| usable(i)) {
            let w = i64::from(d.weight(i));
            r1 -= w;
            r2 -= w;
            if r1 <= 0 && c1.is_none() {
                c1 = Some(i);
            }
            if r2 <= 0 && c2.is_none() {
                c2 = Some(i);
            }
            if c1.is_some() && c2.is_some() {
                break;
            }
        }
        let (a, b) = (c1?, c2?);
        let (wa, wb) = (u128::from(d.weight(a)), u128::from(d.weight(b)));
        let (oa, ob) = (u128::from(d.overhead(a)), u128::from(d.overhead(b)));
        Some(if wb * oa > wa * ob { b } else { a })
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;

    #[test]
    fn loaded_server_loses_the_draw() {
        let fx = Fixture::new(&[1, 1]);
        fx.set_conns(0, 50, 0);
        let mut s = fx.build("twos", 0);
        let h = fx.histogram(s.as_mut(), 400);
        // The kernel draws in 0..=total, so a draw lands on server 0 two times in three; the
        // loaded server 0 still wins only when both draws land on it: (2/3)^2 = 44%.
        assert!(h[0] > 140 && h[0] < 220, "{h:?}");
    }

    #[test]
    fn weights_bias_the_draw() {
        let fx = Fixture::new(&[1, 9]);
        let mut s = fx.build("twos", 0);
        let h = fx.histogram(s.as_mut(), 1000);
        // Draws land on server 1 nine times in eleven; idle ties go to the first draw.
        assert!(h[1] > 760 && h[1] < 870, "{h:?}");
    }
}
