//! Rate estimation the way IPVS does it (net/netfilter/ipvs/ip_vs_est.c): every 2 seconds the
//! counters are sampled, and each rate moves a quarter of the way towards the new sample.
//! Connection and packet rates are kept scaled by 2^10, byte rates by 2^5, and rounded on
//! reading, so `xvsadm -Ln --rate` shows what `ipvsadm -Ln --rate` would.

use crate::proto::{Counters, Rates};

/// Seconds between samples.
pub const INTERVAL_SECS: u64 = 2;

/// One estimator (per service or real server).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Estimator {
    last: Counters,
    cps: i64,
    inpps: i64,
    outpps: i64,
    inbps: i64,
    outbps: i64,
}

fn ewma(avg: &mut i64, delta: u64, shift: u32) {
    let rate = (delta.min(i64::MAX as u64 >> 10) as i64) << shift;
    *avg += (rate - *avg) >> 2;
}

impl Estimator {
    /// An estimator starting from the current totals.
    pub fn new(now: Counters) -> Estimator {
        Estimator {
            last: now,
            ..Estimator::default()
        }
    }

    /// Takes one sample (call every [`INTERVAL_SECS`] seconds).
    pub fn sample(&mut self, now: Counters) {
        let d = |a: u64, b: u64| a.saturating_sub(b);
        ewma(&mut self.cps, d(now.conns, self.last.conns), 9);
        ewma(&mut self.inpps, d(now.in_pkts, self.last.in_pkts), 9);
        ewma(&mut self.outpps, d(now.out_pkts, self.last.out_pkts), 9);
        ewma(&mut self.inbps, d(now.in_bytes, self.last.in_bytes), 4);
        ewma(&mut self.outbps, d(now.out_bytes, self.last.out_bytes), 4);
        self.last = now;
    }

    /// The rates per second.
    pub fn rates(&self) -> Rates {
        let r = |v: i64, add: i64, shift: u32| ((v + add).max(0) >> shift) as u64;
        Rates {
            cps: r(self.cps, 0x1FF, 10),
            in_pps: r(self.inpps, 0x1FF, 10),
            out_pps: r(self.outpps, 0x1FF, 10),
            in_bps: r(self.inbps, 0xF, 5),
            out_bps: r(self.outbps, 0xF, 5),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(conns: u64, pkts: u64, bytes: u64) -> Counters {
        Counters {
            conns,
            in_pkts: pkts,
            out_pkts: pkts / 2,
            in_bytes: bytes,
            out_bytes: 0,
        }
    }

    #[test]
    fn a_steady_rate_converges_to_its_value() {
        let mut e = Estimator::new(Counters::default());
        // 100 conns/s, 1000 pkt/s, 64000 B/s for a minute.
        for i in 1..=60u64 {
            e.sample(at(200 * i, 2000 * i, 128_000 * i));
        }
        let r = e.rates();
        assert_eq!(
            (r.cps, r.in_pps, r.out_pps, r.in_bps),
            (100, 1000, 500, 64000)
        );
        // Traffic stops: the rates decay by a quarter per sample.
        e.sample(at(12_000, 120_000, 7_680_000));
        assert_eq!(e.rates().cps, 75);
        for _ in 0..40 {
            e.sample(at(12_000, 120_000, 7_680_000));
        }
        assert_eq!(e.rates(), Rates::default());
    }

    #[test]
    fn the_first_sample_moves_a_quarter_of_the_way() {
        let mut e = Estimator::new(Counters::default());
        e.sample(at(800, 0, 0));
        assert_eq!(
            e.rates().cps,
            100,
            "400/s seen for 2 s moves the average to 100"
        );
    }
}
