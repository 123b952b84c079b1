//! Weighted round robin (`wrr`): the kernel's interleaved algorithm. The current weight steps
//! down by the weights' GCD each pass; a server is picked when its weight reaches it, so weights
//! 3:2:1 give the cycle A A B A B C.

use super::{Dests, Params, Request, Scheduler};

struct WeightedRoundRobin {
    cursor: Option<usize>,
    cw: i64,
    mw: i64,
    di: i64,
    /// Passes over the servers after which nothing is available (every weight level once,
    /// plus one).
    passes: usize,
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 { a } else { gcd(b, a % b) }
}

pub(super) fn build(d: &Dests<'_>, _: &Params) -> Box<dyn Scheduler> {
    let weights = (0..d.len()).map(|i| d.weight(i)).filter(|w| *w > 0);
    let di = weights.clone().fold(0, gcd).max(1);
    let max = weights.max().unwrap_or(0);
    let mw = if max == 0 {
        0
    } else {
        i64::from(max) - (i64::from(di) - 1)
    };
    Box::new(WeightedRoundRobin {
        cursor: None,
        cw: mw,
        mw,
        di: i64::from(di),
        passes: (mw / i64::from(di)).max(0) as usize + 2,
    })
}

impl Scheduler for WeightedRoundRobin {
    fn schedule(&mut self, d: &Dests<'_>, _: &Request<'_>) -> Option<usize> {
        let n = d.len();
        if n == 0 || self.mw <= 0 {
            return None;
        }
        let bound = n * self.passes;
        for _ in 0..bound {
            let i = match self.cursor {
                Some(c) if c + 1 < n => c + 1,
                Some(_) => {
                    self.cw -= self.di;
                    if self.cw <= 0 {
                        self.cw = self.mw;
                    }
                    0
                }
                None => 0,
            };
            self.cursor = Some(i);
            if i64::from(d.weight(i)) >= self.cw && !d.overloaded(i) {
                return Some(i);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;

    #[test]
    fn three_two_one_cycle() {
        let fx = Fixture::new(&[3, 2, 1]);
        let mut s = fx.build("wrr", 0);
        let picks: Vec<_> = (0..12)
            .map(|k| fx.pick(s.as_mut(), client(k), 1).unwrap())
            .collect();
        assert_eq!(picks, [0, 0, 1, 0, 1, 2, 0, 0, 1, 0, 1, 2]);
        assert_eq!(fx.histogram(s.as_mut(), 600), [300, 200, 100]);
    }

    #[test]
    fn gcd_reduces_passes() {
        let fx = Fixture::new(&[4, 2]);
        let mut s = fx.build("wrr", 0);
        let picks: Vec<_> = (0..6)
            .map(|k| fx.pick(s.as_mut(), client(k), 1).unwrap())
            .collect();
        assert_eq!(picks, [0, 0, 1, 0, 0, 1]);
    }
}
