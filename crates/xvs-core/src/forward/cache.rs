//! A worker's own copy of what it decided for its established flows, in front of the shared
//! connection table (Katran's per-CPU LRU, VPP lb's sticky table), and its egress record per
//! real server.
//!
//! An established packet of a cached flow takes no lock and writes nothing another worker
//! reads: the shared entry is only visited (locked, state advanced, expiry refreshed) on the
//! first packet of each second, or when a TCP flag might move the state. So an entry is valid
//! while
//!
//! - it was filled by this worker in the current second (`second == now`), which keeps the
//!   shared entry's expiry refreshed at least once a second while the flow lasts, and puts
//!   an entry removed by someone else (evicted, flushed) out of use within a second;
//! - the worker's snapshot has not changed since: a configuration change, a health state, a
//!   neighbour, `expire_nodest_conn` all come with a new snapshot, which empties the cache;
//! - the packet cannot change the connection's state: entries are only filled for states
//!   that a plain packet leaves as they are (TCP ESTABLISHED, UDP after its second packet),
//!   and TCP packets with SYN, FIN or RST always take the shared path.
//!
//! Four-way set-associative, 64-byte entries, indexed by a cheap keyed hash of the key (one
//! multiply: a crafted collision only sends flows to the shared table); a new entry replaces
//! the oldest of its set.

use crate::conn::FlowKey;
use crate::net::{NextHop, Resolve};
use crate::service::Method;
use crate::snapshot::Snapshot;
use crate::{RealId, ServiceId};

/// Entries per worker (64 bytes each: 256 KiB).
pub const ENTRIES: usize = 4096;
/// Entries per set.
const WAYS: usize = 4;
/// Sets.
const SETS: usize = ENTRIES / WAYS;

/// What the worker decided for one flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C, align(64))]
pub(super) struct Cached {
    pub key: FlowKey,
    /// The second of the shared visit that filled it (`u32::MAX`: empty).
    pub second: u32,
    pub real: RealId,
    pub svc: ServiceId,
    pub laddr: u16,
    pub lport: u16,
    pub method: Method,
    pub state: u8,
    /// Low bits of the hash: most non-matching ways are told apart by this alone.
    pub tag: u32,
    _pad: u32,
}

impl Cached {
    /// What the shared visit at second `now` decided for `key`.
    pub fn of(key: FlowKey, now: u32, info: &super::flow::FwdInfo) -> Cached {
        Cached {
            key,
            second: now,
            real: info.real,
            svc: info.svc,
            laddr: info.laddr,
            lport: info.lport,
            method: info.method,
            state: info.new_state,
            tag: 0,
            _pad: 0,
        }
    }
}

const EMPTY: Cached = Cached {
    tag: 0,
    _pad: 0,
    key: FlowKey::ZERO,
    second: u32::MAX,
    real: 0,
    svc: 0,
    laddr: 0,
    lport: 0,
    method: Method::Dr,
    state: 0,
};

/// The flow cache of one worker.
pub(super) struct FlowCache {
    sets: Box<[[Cached; WAYS]; SETS]>,
    seed: u64,
}

impl FlowCache {
    pub fn new(seed: u64) -> FlowCache {
        FlowCache {
            sets: vec![[EMPTY; WAYS]; SETS]
                .into_boxed_slice()
                .try_into()
                .unwrap_or_else(|_| unreachable!("SETS sets were made")),
            seed: seed | 1,
        }
    }

    /// The cache's hash of `key` (what [`FlowCache::get`] and [`FlowCache::put`] take).
    #[inline(always)]
    pub fn hash(&self, key: &FlowKey) -> u64 {
        let w = key.words();
        let x = w[0] ^ w[1].rotate_left(13) ^ w[2].rotate_left(29) ^ w[3].rotate_left(43) ^ w[4];
        let m = u128::from(x ^ self.seed) * 0x9e37_79b9_7f4a_7c15;
        (m as u64) ^ ((m >> 64) as u64)
    }

    /// Forgets every entry (a new snapshot: a few thousand stores, never per packet).
    pub fn invalidate(&mut self) {
        for e in self.sets.iter_mut().flatten() {
            e.second = u32::MAX;
        }
    }

    #[inline(always)]
    fn set(hash: u64) -> usize {
        (hash >> 32) as usize & (SETS - 1)
    }

    /// The entry for `key` (cache hash `hash`) if it is valid at second `now`.
    #[inline(always)]
    pub fn get(&self, key: &FlowKey, hash: u64, now: u32) -> Option<&Cached> {
        let set = &self.sets[Self::set(hash)];
        let tag = hash as u32;
        set.iter()
            .find(|e| e.tag == tag && e.second == now && e.key == *key)
    }

    /// Remembers `c` (its `second` set by the caller) for `hash`: over the entry of the same
    /// key, else over an unused one, else over the one filled earliest.
    #[inline]
    pub fn put(&mut self, hash: u64, mut c: Cached) {
        c.tag = hash as u32;
        let set = &mut self.sets[Self::set(hash)];
        let age = |e: &Cached| {
            if e.key == c.key || e.second == u32::MAX {
                0
            } else {
                u64::from(e.second) + 1
            }
        };
        let mut w = 0;
        for k in 1..WAYS {
            if age(&set[k]) < age(&set[w]) {
                w = k;
            }
        }
        set[w] = c;
    }

    /// Drops the entry of `key`, if it is there.
    #[inline]
    pub fn forget(&mut self, key: &FlowKey, hash: u64) {
        for e in &mut self.sets[Self::set(hash)] {
            if e.key == *key {
                e.second = u32::MAX;
            }
        }
    }

    /// Bytes it occupies.
    pub fn memory_bytes(&self) -> usize {
        size_of::<[[Cached; WAYS]; SETS]>()
    }
}

/// How to reach one real server from this worker: the snapshot's next hop, resolved once
/// per snapshot (16 bytes; an unknown next hop has MTU 0, and the slow path resolves and
/// reports it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Egress {
    hop: NextHop,
}

impl Egress {
    /// The next hop, if known and a packet of `l3_len` bytes fits its MTU.
    #[inline(always)]
    pub fn usable(&self, l3_len: usize) -> Option<NextHop> {
        (l3_len <= usize::from(self.hop.mtu) && self.hop.mtu != 0).then_some(self.hop)
    }
}

/// Rebuilds the egress records for `snap`, one per real-server slot.
pub(super) fn egress_records(snap: &Snapshot, out: &mut Vec<Egress>) {
    out.clear();
    out.extend(
        (0..snap.services.real_slots()).map(|id| match snap.real_hop(id as RealId) {
            Resolve::Hop(hop) => Egress { hop },
            _ => Egress {
                hop: NextHop {
                    port: 0,
                    macs: [0; 12],
                    mtu: 0,
                },
            },
        }),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> FlowKey {
        let mut a = [0u8; 16];
        a[15] = n;
        FlowKey::flow(4, 6, a, 1000 + u16::from(n), [9; 16], 80)
    }

    fn cached(k: FlowKey, second: u32) -> Cached {
        Cached {
            key: k,
            second,
            real: 7,
            ..EMPTY
        }
    }

    #[test]
    fn the_hash_spreads_flows_over_sets() {
        let c = FlowCache::new(99);
        let mut used = std::collections::HashSet::new();
        for p in 0..1024u16 {
            let k = FlowKey::v4(
                6,
                [203, 0, 113, (p >> 8) as u8],
                10_000 + p,
                [198, 51, 100, 50],
                80,
            );
            used.insert(FlowCache::set(c.hash(&k)));
        }
        // 1024 flows over 1024 sets: a uniform hash leaves about 1/e of them empty.
        assert!(used.len() > 550, "{} sets used", used.len());
    }

    #[test]
    fn one_cache_line() {
        assert_eq!(size_of::<Cached>(), 64);
        assert_eq!(size_of::<Egress>(), 16);
    }

    #[test]
    fn an_unknown_hop_is_never_usable() {
        let none = Egress {
            hop: NextHop {
                port: 0,
                macs: [0; 12],
                mtu: 0,
            },
        };
        assert!(none.usable(0).is_none());
        let hop = NextHop {
            port: 1,
            macs: [7; 12],
            mtu: 1500,
        };
        let e = Egress { hop };
        assert_eq!(e.usable(1500), Some(hop));
        assert!(e.usable(1501).is_none(), "too big: the slow path answers");
    }

    #[test]
    fn valid_in_its_second_and_snapshot_only() {
        let mut c = FlowCache::new(3);
        let (k, hash) = (key(1), 0x1234_5678_0000_0000);
        assert!(c.get(&k, hash, 5).is_none(), "empty");
        c.put(hash, cached(k, 5));
        assert_eq!(c.get(&k, hash, 5).map(|e| e.real), Some(7));
        assert!(
            c.get(&k, hash, 6).is_none(),
            "a new second visits the shared entry"
        );
        assert!(
            c.get(&key(2), hash, 5).is_none(),
            "another key in the same slot"
        );
        c.invalidate();
        assert!(
            c.get(&k, hash, 5).is_none(),
            "a new snapshot empties the cache"
        );
        c.put(hash, cached(k, 5));
        c.forget(&key(2), hash);
        assert!(
            c.get(&k, hash, 5).is_some(),
            "forgetting another key leaves it"
        );
        c.forget(&k, hash);
        assert!(c.get(&k, hash, 5).is_none());
        assert_eq!(c.memory_bytes(), ENTRIES * 64);
    }

    #[test]
    fn four_flows_share_a_set_and_a_fifth_replaces_the_oldest() {
        let mut c = FlowCache::new(3);
        let hash = 0x0000_0042_0000_0000;
        for n in 1..=4 {
            c.put(hash, cached(key(n), 5 + u32::from(n)));
        }
        for n in 1..=4 {
            assert!(c.get(&key(n), hash, 5 + u32::from(n)).is_some());
        }
        c.put(hash, cached(key(5), 10));
        assert!(c.get(&key(1), hash, 6).is_none(), "the oldest one went");
        for n in 2..=5 {
            assert!(c.get(&key(n), hash, 5 + u32::from(n)).is_some());
        }
        // Refilling a key reuses its own entry.
        c.put(hash, cached(key(5), 11));
        assert!(c.get(&key(2), hash, 7).is_some());
        assert!(c.get(&key(5), hash, 11).is_some());
    }
}
