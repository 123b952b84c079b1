//! What xvsadm shows of the counters: totals since the last `-Z` (the workers' counters are
//! never written by the control thread; zeroing records a baseline that listings subtract) and
//! rates from IPVS's estimator, sampled every 2 seconds.

use std::collections::HashMap;
use std::time::{Duration, Instant};
use xvs_control::proto::{Counters, Rates};
use xvs_control::rate::{Estimator, INTERVAL_SECS};
use xvs_core::RealId;
use xvs_core::service::{ServiceKey, ServiceTable};
use xvs_core::stats::{Stats, Totals};

/// Baselines and estimators.
pub struct Accounting {
    real_base: HashMap<RealId, Counters>,
    svc_base: HashMap<ServiceKey, Counters>,
    svc_retired: HashMap<ServiceKey, Counters>,
    real_est: HashMap<RealId, Estimator>,
    svc_est: HashMap<ServiceKey, Estimator>,
    last_sample: Instant,
}

fn counters(t: &Totals) -> Counters {
    Counters {
        conns: t.conns,
        in_pkts: t.in_pkts,
        out_pkts: t.out_pkts,
        in_bytes: t.in_bytes,
        out_bytes: t.out_bytes,
    }
}

fn sub(a: Counters, b: Counters) -> Counters {
    Counters {
        conns: a.conns.saturating_sub(b.conns),
        in_pkts: a.in_pkts.saturating_sub(b.in_pkts),
        out_pkts: a.out_pkts.saturating_sub(b.out_pkts),
        in_bytes: a.in_bytes.saturating_sub(b.in_bytes),
        out_bytes: a.out_bytes.saturating_sub(b.out_bytes),
    }
}

fn add(a: Counters, b: Counters) -> Counters {
    Counters {
        conns: a.conns + b.conns,
        in_pkts: a.in_pkts + b.in_pkts,
        out_pkts: a.out_pkts + b.out_pkts,
        in_bytes: a.in_bytes + b.in_bytes,
        out_bytes: a.out_bytes + b.out_bytes,
    }
}

impl Accounting {
    /// Raw totals of a service: the sums over every real server that belongs or belonged to
    /// it, those already purged included.
    fn service_raw(&self, stats: &Stats, table: &ServiceTable, key: &ServiceKey) -> Counters {
        let live = match table.find(key) {
            Some(s) => counters(&stats.service_totals(table.reals_of(s.id))),
            None => Counters::default(),
        };
        add(live, self.svc_retired.get(key).copied().unwrap_or_default())
    }

    /// Nothing zeroed, no samples yet.
    pub fn new() -> Accounting {
        Accounting {
            real_base: HashMap::new(),
            svc_base: HashMap::new(),
            svc_retired: HashMap::new(),
            real_est: HashMap::new(),
            svc_est: HashMap::new(),
            last_sample: Instant::now(),
        }
    }

    /// A real server's totals since it was last zeroed.
    pub fn real(&self, stats: &Stats, id: RealId) -> Counters {
        let raw = counters(&stats.real_totals(id));
        sub(raw, self.real_base.get(&id).copied().unwrap_or_default())
    }

    /// A service's totals since it was added or last zeroed.
    pub fn service(&self, stats: &Stats, table: &ServiceTable, key: &ServiceKey) -> Counters {
        sub(
            self.service_raw(stats, table, key),
            self.svc_base.get(key).copied().unwrap_or_default(),
        )
    }

    /// A real server's rates.
    pub fn real_rates(&self, id: RealId) -> Rates {
        self.real_est
            .get(&id)
            .map(Estimator::rates)
            .unwrap_or_default()
    }

    /// A service's rates.
    pub fn service_rates(&self, key: &ServiceKey) -> Rates {
        self.svc_est
            .get(key)
            .map(Estimator::rates)
            .unwrap_or_default()
    }

    /// A service was just added: its totals start from zero, even where its slot or real
    /// servers carry counts from before.
    pub fn service_added(&mut self, stats: &Stats, table: &ServiceTable, key: &ServiceKey) {
        self.svc_retired.remove(key);
        let raw = self.service_raw(stats, table, key);
        self.svc_base.insert(*key, raw);
        self.svc_est.remove(key);
    }

    /// A removed real server's slot is about to be freed (and its counters cleared): keep its
    /// service's totals continuous.
    pub fn real_purged(&mut self, stats: &Stats, table: &ServiceTable, id: RealId) {
        let raw = counters(&stats.real_totals(id));
        if let Some(svc) = table.real(id).and_then(|r| table.service(r.service)) {
            let retired = self.svc_retired.entry(svc.key).or_default();
            *retired = add(*retired, raw);
        }
        self.real_base.remove(&id);
        self.real_est.remove(&id);
    }

    /// `-Z`: zeroes one service (with its real servers) or everything.
    pub fn zero(&mut self, stats: &Stats, table: &ServiceTable, only: Option<&ServiceKey>) {
        for s in table.services() {
            if only.is_some_and(|k| *k != s.key) {
                continue;
            }
            let raw = self.service_raw(stats, table, &s.key);
            self.svc_base.insert(s.key, raw);
            self.svc_est
                .insert(s.key, Estimator::new(Counters::default()));
            for id in table.reals_of(s.id) {
                self.real_base.insert(id, counters(&stats.real_totals(id)));
                self.real_est
                    .insert(id, Estimator::new(Counters::default()));
            }
        }
    }

    /// Samples the estimators if 2 seconds have passed; forgets services that are gone.
    pub fn tick(&mut self, stats: &Stats, table: &ServiceTable) {
        if self.last_sample.elapsed() < Duration::from_secs(INTERVAL_SECS) {
            return;
        }
        self.last_sample += Duration::from_secs(INTERVAL_SECS);
        if self.last_sample.elapsed() >= Duration::from_secs(INTERVAL_SECS) {
            // Fell behind (a long reload): restart the clock rather than sample in a burst.
            self.last_sample = Instant::now();
        }
        self.svc_est.retain(|k, _| table.find(k).is_some());
        self.svc_base.retain(|k, _| table.find(k).is_some());
        self.svc_retired.retain(|k, _| table.find(k).is_some());
        for s in table.services() {
            let now = self.service(stats, table, &s.key);
            self.svc_est
                .entry(s.key)
                .or_insert_with(|| Estimator::new(now))
                .sample(now);
            for id in table.reals_of(s.id) {
                let now = self.real(stats, id);
                self.real_est
                    .entry(id)
                    .or_insert_with(|| Estimator::new(now))
                    .sample(now);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xvs_core::service::{Method, Protocol, RealOptions, ServiceOptions};
    use xvs_core::stats::bump;

    fn table() -> (ServiceTable, ServiceKey) {
        let mut t = ServiceTable::new(4, 8);
        let key = ServiceKey::Addr {
            proto: Protocol::Tcp,
            addr: "198.18.0.10".parse().unwrap(),
            port: 80,
        };
        let o = ServiceOptions {
            scheduler: "rr".into(),
            ..ServiceOptions::default()
        };
        t.add_service(key, o).unwrap();
        for a in ["198.18.0.11", "198.18.0.12"] {
            let r = RealOptions {
                method: Method::Dr,
                weight: 1,
                u_threshold: 0,
                l_threshold: 0,
                tunnel: Default::default(),
            };
            t.add_real(&key, a.parse().unwrap(), None, r).unwrap();
        }
        (t, key)
    }

    #[test]
    fn zero_then_purge_keeps_service_totals_continuous() {
        let (mut t, key) = table();
        let stats = Stats::new(1, 8);
        let mut acc = Accounting::new();
        bump(&stats.slot(0).reals[0].conns, 5);
        bump(&stats.slot(0).reals[1].conns, 7);
        assert_eq!(acc.service(&stats, &t, &key).conns, 12);
        acc.zero(&stats, &t, None);
        assert_eq!(acc.service(&stats, &t, &key).conns, 0);
        assert_eq!(acc.real(&stats, 1).conns, 0);
        bump(&stats.slot(0).reals[1].conns, 3);
        assert_eq!(acc.service(&stats, &t, &key).conns, 3);
        assert_eq!(acc.real(&stats, 1).conns, 3);
        // Remove and purge the second real server: the service keeps what it counted.
        t.remove_real(&key, "198.18.0.12".parse().unwrap(), None)
            .unwrap();
        acc.real_purged(&stats, &t, 1);
        stats.reset_real(1);
        t.purge_real(1);
        assert_eq!(acc.service(&stats, &t, &key).conns, 3);
    }

    #[test]
    fn a_new_service_starts_from_zero() {
        let (t, key) = table();
        let stats = Stats::new(1, 8);
        let mut acc = Accounting::new();
        bump(&stats.slot(0).reals[0].conns, 4);
        acc.service_added(&stats, &t, &key);
        assert_eq!(acc.service(&stats, &t, &key).conns, 0);
    }
}
