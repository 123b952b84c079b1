//! Overflow-connection (`ovf`): the highest-weight server whose active connections are below
//! its weight; the next one takes the overflow.

use super::{Dests, Params, Request, Scheduler};

struct Overflow;

pub(super) fn build(_: &Dests<'_>, _: &Params) -> Box<dyn Scheduler> {
    Box::new(Overflow)
}

impl Scheduler for Overflow {
    fn schedule(&mut self, d: &Dests<'_>, _: &Request<'_>) -> Option<usize> {
        let mut best: Option<(usize, u32)> = None;
        for i in 0..d.len() {
            let w = d.weight(i);
            if w > 0 && w > best.map_or(0, |b| b.1) && d.active(i) < w && !d.overloaded(i) {
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
    fn fills_heaviest_then_overflows() {
        let fx = Fixture::new(&[2, 3]);
        let mut s = fx.build("ovf", 0);
        assert_eq!(fx.pick(s.as_mut(), client(0), 1), Some(1));
        fx.set_conns(1, 3, 0);
        assert_eq!(fx.pick(s.as_mut(), client(0), 1), Some(0));
        fx.set_conns(0, 2, 0);
        assert_eq!(fx.pick(s.as_mut(), client(0), 1), None, "all full");
    }
}
