//! Round robin (`rr`): each available server in turn.

use super::{Dests, Params, Request, Scheduler};

struct RoundRobin {
    last: Option<usize>,
}

pub(super) fn build(_: &Dests<'_>, _: &Params) -> Box<dyn Scheduler> {
    Box::new(RoundRobin { last: None })
}

impl Scheduler for RoundRobin {
    fn schedule(&mut self, d: &Dests<'_>, _: &Request<'_>) -> Option<usize> {
        let n = d.len();
        let start = self.last.map_or(0, |l| l + 1);
        let i = (0..n).map(|k| (start + k) % n).find(|&i| d.available(i))?;
        self.last = Some(i);
        Some(i)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;

    #[test]
    fn cycles_in_order_ignoring_weights() {
        let fx = Fixture::new(&[1, 7, 3]);
        let mut s = fx.build("rr", 0);
        let picks: Vec<_> = (0..6)
            .map(|k| fx.pick(s.as_mut(), client(k), 1).unwrap())
            .collect();
        assert_eq!(picks, [0, 1, 2, 0, 1, 2]);
    }
}
