//! Least connection (`lc`): the available server with the smallest overhead
//! (`active × 256 + inactive`), weights only excluding quiesced servers.

use super::{Dests, Params, Request, Scheduler};

struct LeastConnection;

pub(super) fn build(_: &Dests<'_>, _: &Params) -> Box<dyn Scheduler> {
    Box::new(LeastConnection)
}

impl Scheduler for LeastConnection {
    fn schedule(&mut self, d: &Dests<'_>, _: &Request<'_>) -> Option<usize> {
        (0..d.len())
            .filter(|&i| d.available(i))
            .min_by_key(|&i| (d.overhead(i), i))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;

    #[test]
    fn picks_fewest_connections_regardless_of_weight() {
        let fx = Fixture::new(&[1, 100, 1]);
        fx.set_conns(0, 2, 0);
        fx.set_conns(1, 1, 10);
        fx.set_conns(2, 1, 5);
        let mut s = fx.build("lc", 0);
        assert_eq!(fx.pick(s.as_mut(), client(0), 1), Some(2));
        fx.set_conns(2, 3, 0);
        assert_eq!(fx.pick(s.as_mut(), client(0), 1), Some(1));
    }
}
