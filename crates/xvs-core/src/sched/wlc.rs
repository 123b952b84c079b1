//! Weighted least connection (`wlc`, ipvsadm's default): the smallest `overhead / weight`.

use super::{Dests, Params, Request, Scheduler, weighted_least};

struct WeightedLeastConnection;

pub(super) fn build(_: &Dests<'_>, _: &Params) -> Box<dyn Scheduler> {
    Box::new(WeightedLeastConnection)
}

impl Scheduler for WeightedLeastConnection {
    fn schedule(&mut self, d: &Dests<'_>, _: &Request<'_>) -> Option<usize> {
        weighted_least(d, |i| d.overhead(i))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;

    #[test]
    fn weights_scale_connections() {
        let fx = Fixture::new(&[1, 4]);
        fx.set_conns(0, 1, 0); // 256 / 1
        fx.set_conns(1, 3, 0); // 768 / 4 = 192: lower
        let mut s = fx.build("wlc", 0);
        assert_eq!(fx.pick(s.as_mut(), client(0), 1), Some(1));
        fx.set_conns(1, 5, 0); // 1280 / 4 = 320: higher
        assert_eq!(fx.pick(s.as_mut(), client(0), 1), Some(0));
        fx.set_conns(1, 4, 0); // tie at 256: first one wins
        assert_eq!(fx.pick(s.as_mut(), client(0), 1), Some(0));
    }
}
