//! Never queue (`nq`): an idle server (no active connections) if there is one, else `sed`.

use super::{Dests, Params, Request, Scheduler, weighted_least};

struct NeverQueue;

pub(super) fn build(_: &Dests<'_>, _: &Params) -> Box<dyn Scheduler> {
    Box::new(NeverQueue)
}

impl Scheduler for NeverQueue {
    fn schedule(&mut self, d: &Dests<'_>, _: &Request<'_>) -> Option<usize> {
        if let Some(idle) = (0..d.len()).find(|&i| d.available(i) && d.active(i) == 0) {
            return Some(idle);
        }
        weighted_least(d, |i| u64::from(d.active(i)) + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;

    #[test]
    fn idle_server_first_even_if_light() {
        let fx = Fixture::new(&[100, 1]);
        fx.set_conns(0, 1, 0);
        fx.set_conns(1, 0, 9);
        let mut s = fx.build("nq", 0);
        assert_eq!(
            fx.pick(s.as_mut(), client(0), 1),
            Some(1),
            "idle beats weight"
        );
        fx.set_conns(1, 1, 0);
        assert_eq!(fx.pick(s.as_mut(), client(0), 1), Some(0), "then sed");
    }
}
