//! The connection table: shared by all workers, sharded by hash, fixed capacity.
//!
//! Each shard is a mutex around a bucketised table: buckets of four entries, and every key has
//! two candidate buckets (two-choice hashing), so the table fills well past 90% before a bucket
//! overflows. A separate array of 32-bit tags (four per bucket, sixteen bytes) lets a lookup
//! touch one tag line and one entry line. Entries never move once placed, so a reply entry can
//! point at its forward entry by (shard, index, serial).
//!
//! Nothing grows: when both buckets are full, an expired entry is replaced first, then the
//! embryonic entry closest to expiry; a new embryonic entry never evicts an established one
//! (the insert fails instead), so a SYN flood cannot push out working connections. Expiry is
//! lazy (checked on lookup) plus an incremental [`ConnTable::sweep`] by the control thread.
//! Locks are held for one operation, never across a batch.

use super::entry::{Entry, EntryKind};
use crossbeam_utils::CachePadded;
use parking_lot::{Mutex, MutexGuard};
use xvs_wire::flow::FlowKey;

/// Entries per bucket.
pub const WAYS: usize = 4;

/// Where an entry lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SlotRef {
    /// Shard index.
    pub shard: u16,
    /// Entry index within the shard.
    pub index: u32,
}

/// The outcome of a lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup<R> {
    /// Found a live entry; the closure's result.
    Hit(R),
    /// No entry.
    Miss,
    /// The entry had expired; it was removed (a copy is returned for the counters).
    Expired(Entry),
}

/// Where a missing key would go, learnt by the lookup that missed it: a free slot of the
/// two-choice bucket and the shard's insert count then. [`ConnTable::insert_at`] places an
/// entry there without probing again if nothing was inserted into the shard since.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Vacancy {
    shard: u16,
    /// Flat slot index + 1 (0: no free slot was seen).
    slot: u32,
    serial: u32,
}

/// An entry that had to leave the table to make room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Displaced {
    /// The entry that left.
    pub entry: Entry,
    /// True if it had expired anyway; false if a live entry was evicted.
    pub expired: bool,
}

/// The outcome of an insert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Insert {
    /// Placed, with the serial it was given; `displaced` is the entry it replaced, if any.
    Inserted {
        /// Where it was placed.
        slot: SlotRef,
        /// Its serial.
        serial: u32,
        /// The entry it replaced.
        displaced: Option<Displaced>,
    },
    /// A live entry with the same key exists (another worker won the race).
    Exists,
    /// No room, and nothing this entry may evict.
    Full,
}

struct Shard {
    tags: Box<[[u32; WAYS]]>,
    entries: Box<[[Entry; WAYS]]>,
    len: usize,
    serial: u32,
}

/// Most shards a table has (a fixed array, so the shard index needs no bounds check).
const MAX_SHARDS: usize = 256;

/// The shared connection table.
pub struct ConnTable {
    shards: Box<[CachePadded<Mutex<Shard>>; MAX_SHARDS]>,
    shard_count: usize,
    shard_mask: usize,
    bucket_mask: usize,
    seed: u64,
}

#[derive(Clone, Copy)]
struct Pos {
    shard: usize,
    b1: usize,
    b2: usize,
    tag: u32,
}

impl ConnTable {
    /// A table of at least `capacity` entries (rounded up to a power of two, minimum 64),
    /// hashing with `seed` (pick it at random in production).
    pub fn new(capacity: usize, seed: u64) -> ConnTable {
        let cap = capacity.max(64).next_power_of_two();
        // Enough shards that workers rarely meet, each with at least 16 buckets.
        let shard_count = (cap / (16 * WAYS)).clamp(1, MAX_SHARDS);
        let per_shard_buckets = cap / shard_count / WAYS;
        let shards = Box::new(core::array::from_fn(|i| {
            let buckets = if i < shard_count {
                per_shard_buckets
            } else {
                0
            };
            CachePadded::new(Mutex::new(Shard {
                tags: vec![[0u32; WAYS]; buckets].into_boxed_slice(),
                entries: vec![[Entry::EMPTY; WAYS]; buckets].into_boxed_slice(),
                len: 0,
                serial: 0,
            }))
        }));
        ConnTable {
            shards,
            shard_count,
            shard_mask: shard_count - 1,
            bucket_mask: per_shard_buckets - 1,
            seed,
        }
    }

    /// Total number of entry slots.
    pub fn capacity(&self) -> usize {
        self.shard_count * (self.bucket_mask + 1) * WAYS
    }

    /// Number of shards.
    pub fn shard_count(&self) -> usize {
        self.shard_count
    }

    /// Bytes the table occupies (entries and tags).
    pub fn memory_bytes(&self) -> usize {
        Self::memory_for(self.capacity())
    }

    /// Bytes a table asked for `capacity` entries will occupy (before it is allocated).
    pub fn memory_for(capacity: usize) -> usize {
        capacity.max(64).next_power_of_two() * (size_of::<Entry>() + size_of::<u32>())
    }

    /// Entries in use (locks each shard briefly; for statistics).
    pub fn len(&self) -> usize {
        (0..self.shard_count).map(|s| self.lock(s).len).sum()
    }

    /// True if no entry is in use.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The table's hash of a key.
    #[inline(always)]
    pub fn hash(&self, key: &FlowKey) -> u64 {
        key.hash(self.seed)
    }

    #[inline(always)]
    fn pos(&self, hash: u64) -> Pos {
        Pos {
            shard: (hash >> 56) as usize & self.shard_mask,
            b1: hash as usize & self.bucket_mask,
            b2: (hash >> 28) as usize & self.bucket_mask,
            tag: ((hash >> 8) as u32) | 1,
        }
    }

    #[inline(always)]
    fn lock(&self, shard: usize) -> MutexGuard<'_, Shard> {
        self.shards[shard & (MAX_SHARDS - 1)].lock()
    }

    /// Finds the entry for `key` (whose table hash is `hash`) and, if it is live at `now`,
    /// runs `f` on it under the shard lock. An expired entry is removed and returned.
    #[inline]
    pub fn lookup<R>(
        &self,
        key: &FlowKey,
        hash: u64,
        now: u32,
        f: impl FnOnce(&mut Entry, SlotRef) -> R,
    ) -> Lookup<R> {
        let p = self.pos(hash);
        let mut guard = self.lock(p.shard);
        let shard = &mut *guard;
        let Some((b, w)) = shard.find(&p, key) else {
            return Lookup::Miss;
        };
        let slot = SlotRef {
            shard: p.shard as u16,
            index: (b * WAYS + w) as u32,
        };
        match shard.entries.get_mut(b) {
            Some(bucket) if !bucket[w].is_expired(now) => Lookup::Hit(f(&mut bucket[w], slot)),
            Some(_) => Lookup::Expired(shard.clear(b * WAYS + w)),
            None => Lookup::Miss,
        }
    }

    /// [`ConnTable::lookup`], also noting where the key would be inserted if it is missing.
    #[inline]
    pub fn lookup_vacancy<R>(
        &self,
        key: &FlowKey,
        hash: u64,
        now: u32,
        f: impl FnOnce(&mut Entry, SlotRef) -> R,
    ) -> (Lookup<R>, Vacancy) {
        let p = self.pos(hash);
        let mut guard = self.lock(p.shard);
        let shard = &mut *guard;
        let Some((b, w)) = shard.find(&p, key) else {
            let v = Vacancy {
                shard: p.shard as u16,
                slot: shard.free_slot(&p).map_or(0, |i| i as u32 + 1),
                serial: shard.serial,
            };
            return (Lookup::Miss, v);
        };
        let slot = SlotRef {
            shard: p.shard as u16,
            index: (b * WAYS + w) as u32,
        };
        let r = match shard.entries.get_mut(b) {
            Some(bucket) if !bucket[w].is_expired(now) => Lookup::Hit(f(&mut bucket[w], slot)),
            Some(_) => Lookup::Expired(shard.clear(b * WAYS + w)),
            None => Lookup::Miss,
        };
        (r, Vacancy::default())
    }

    /// Inserts `entry` (whose key hashes to `hash`) at the vacancy a missed lookup found, if
    /// nothing was inserted into that shard since; otherwise as [`ConnTable::insert`] does.
    pub fn insert_at(&self, v: Vacancy, hash: u64, mut entry: Entry, now: u32) -> Insert {
        let p = self.pos(hash);
        if v.slot != 0 && usize::from(v.shard) == p.shard {
            let mut shard = self.lock(p.shard);
            let i = (v.slot - 1) as usize;
            if shard.serial == v.serial
                && shard.tags.get(i / WAYS).is_some_and(|t| t[i % WAYS] == 0)
            {
                return shard.place(&p, i, &mut entry, None);
            }
            drop(shard);
        }
        self.insert(hash, entry, now)
    }

    /// Runs `f` on the forward entry at `slot` if it still carries `serial` and is live.
    pub fn with_slot<R>(
        &self,
        slot: SlotRef,
        serial: u32,
        now: u32,
        f: impl FnOnce(&mut Entry) -> R,
    ) -> Lookup<R> {
        let s = usize::from(slot.shard);
        if s >= self.shard_count {
            return Lookup::Miss;
        }
        let mut shard = self.lock(s);
        let i = slot.index as usize;
        match shard.entries.get(i / WAYS) {
            Some(b) if b[i % WAYS].kind == EntryKind::Forward && b[i % WAYS].serial == serial => {}
            _ => return Lookup::Miss,
        }
        if shard.entry(i).is_expired(now) {
            return Lookup::Expired(shard.clear(i));
        }
        Lookup::Hit(f(shard.entry_mut(i)))
    }

    /// Inserts `entry` (whose key hashes to `hash`). The table assigns its serial.
    pub fn insert(&self, hash: u64, mut entry: Entry, now: u32) -> Insert {
        let p = self.pos(hash);
        let mut shard = self.lock(p.shard);
        let mut displaced = None;
        let i = match shard.find_slot(&p, &entry.key) {
            Some(i) if !shard.entry(i).is_expired(now) => return Insert::Exists,
            Some(i) => {
                displaced = Some(Displaced {
                    entry: shard.clear(i),
                    expired: true,
                });
                i
            }
            None => match shard.free_slot(&p) {
                Some(i) => i,
                None => {
                    let Some((i, expired)) = shard.victim(&p, now, entry.is_established_class())
                    else {
                        return Insert::Full;
                    };
                    displaced = Some(Displaced {
                        entry: shard.clear(i),
                        expired,
                    });
                    i
                }
            },
        };
        shard.place(&p, i, &mut entry, displaced)
    }

    /// Removes the entry for `key` if `pred` accepts it; returns it.
    pub fn remove(
        &self,
        key: &FlowKey,
        hash: u64,
        pred: impl FnOnce(&Entry) -> bool,
    ) -> Option<Entry> {
        let p = self.pos(hash);
        let mut shard = self.lock(p.shard);
        let i = shard.find_slot(&p, key)?;
        if !pred(shard.entry(i)) {
            return None;
        }
        Some(shard.clear(i))
    }

    /// Removes expired entries from `count` shards starting at `first` (wrapping), handing each
    /// to `removed` (called under the shard lock: keep it cheap). Returns the number removed.
    pub fn sweep(
        &self,
        first: usize,
        count: usize,
        now: u32,
        mut removed: impl FnMut(&Entry),
    ) -> usize {
        self.retain_in(first, count, |e| {
            if e.is_expired(now) {
                removed(e);
                false
            } else {
                true
            }
        })
    }

    /// Keeps only the entries `keep` accepts, across the whole table; returns the number removed.
    pub fn retain(&self, mut keep: impl FnMut(&Entry) -> bool) -> usize {
        self.retain_in(0, self.shard_count, |e| keep(e))
    }

    fn retain_in(
        &self,
        first: usize,
        count: usize,
        mut keep: impl FnMut(&mut Entry) -> bool,
    ) -> usize {
        let n = self.shard_count;
        let mut gone = 0;
        for k in 0..count.min(n) {
            let mut shard = self.lock((first + k) % n);
            for i in 0..shard.entries.len() * WAYS {
                if shard.entry(i).kind != EntryKind::Empty && !keep(shard.entry_mut(i)) {
                    shard.clear(i);
                    gone += 1;
                }
            }
        }
        gone
    }

    /// [`ConnTable::sweep`], and `visit` called (under the shard lock: keep it cheap) on
    /// every entry that stays, which it may change (connection sync marks what it sent).
    pub fn sweep_visit(
        &self,
        first: usize,
        count: usize,
        now: u32,
        mut removed: impl FnMut(&Entry),
        mut visit: impl FnMut(&mut Entry),
    ) -> usize {
        self.retain_in(first, count, |e| {
            if e.is_expired(now) {
                removed(e);
                false
            } else {
                visit(e);
                true
            }
        })
    }

    /// Calls `f` on every entry in use (one shard locked at a time; for listings).
    pub fn for_each(&self, mut f: impl FnMut(&Entry)) {
        for s in 0..self.shard_count {
            let shard = self.lock(s);
            shard
                .entries
                .iter()
                .flatten()
                .filter(|e| e.kind != EntryKind::Empty)
                .for_each(&mut f);
        }
    }
}

impl Shard {
    #[inline(always)]
    fn entry(&self, i: usize) -> &Entry {
        &self.entries[i / WAYS][i % WAYS]
    }

    #[inline(always)]
    fn entry_mut(&mut self, i: usize) -> &mut Entry {
        &mut self.entries[i / WAYS][i % WAYS]
    }

    /// Scans one bucket's tags, comparing keys only where a tag matches; (bucket, way).
    #[inline(always)]
    fn find_in(&self, b: usize, tag: u32, key: &FlowKey) -> Option<(usize, usize)> {
        let (tags, entries) = (self.tags.get(b)?, self.entries.get(b)?);
        let w = (0..WAYS).find(|&w| tags[w] == tag && entries[w].key == *key)?;
        Some((b, w))
    }

    /// Where `key` is: (bucket, way).
    #[inline(always)]
    fn find(&self, p: &Pos, key: &FlowKey) -> Option<(usize, usize)> {
        match self.find_in(p.b1, p.tag, key) {
            Some(i) => Some(i),
            None if p.b2 != p.b1 => self.find_in(p.b2, p.tag, key),
            None => None,
        }
    }

    /// Where `key` is, as a flat slot index.
    #[inline(always)]
    fn find_slot(&self, p: &Pos, key: &FlowKey) -> Option<usize> {
        self.find(p, key).map(|(b, w)| b * WAYS + w)
    }

    #[inline]
    fn free_slot(&self, p: &Pos) -> Option<usize> {
        // A bit per free way of each bucket.
        let free = |b: usize| {
            self.tags.get(b).map_or(0u32, |t| {
                t.iter()
                    .enumerate()
                    .fold(0, |m, (w, &x)| m | (u32::from(x == 0) << w))
            })
        };
        let (m1, m2) = (free(p.b1), free(p.b2));
        // Two-choice: the emptier bucket first.
        let order = if m2.count_ones() > m1.count_ones() {
            [(p.b2, m2), (p.b1, m1)]
        } else {
            [(p.b1, m1), (p.b2, m2)]
        };
        order
            .into_iter()
            .find(|&(_, m)| m != 0)
            .map(|(b, m)| b * WAYS + m.trailing_zeros() as usize)
    }

    /// The entry to replace: an expired one (soonest expired first), else the embryonic entry
    /// closest to expiry, else (only for an established newcomer) the established entry closest
    /// to expiry.
    fn victim(&self, p: &Pos, now: u32, newcomer_established: bool) -> Option<(usize, bool)> {
        let slots = (0..WAYS)
            .map(|w| p.b1 * WAYS + w)
            .chain((0..WAYS).map(|w| p.b2 * WAYS + w));
        let mut best: Option<(usize, (u8, u32))> = None;
        for i in slots {
            let e = self.entry(i);
            let rank = if e.is_expired(now) {
                0
            } else if !e.is_established_class() {
                1
            } else if newcomer_established {
                2
            } else {
                continue;
            };
            let key = (rank, e.expires);
            if best.is_none_or(|(_, k)| key < k) {
                best = Some((i, key));
            }
        }
        best.map(|(i, (rank, _))| (i, rank == 0))
    }

    /// Puts `entry` into the free slot `i` (the one `p` chose), giving it the next serial.
    #[inline]
    fn place(
        &mut self,
        p: &Pos,
        i: usize,
        entry: &mut Entry,
        displaced: Option<Displaced>,
    ) -> Insert {
        self.serial = self.serial.wrapping_add(1).max(1);
        if entry.kind != EntryKind::Reply {
            entry.serial = self.serial;
        }
        let serial = entry.serial;
        self.tags[i / WAYS][i % WAYS] = p.tag;
        *self.entry_mut(i) = *entry;
        self.len += 1;
        Insert::Inserted {
            slot: SlotRef {
                shard: p.shard as u16,
                index: i as u32,
            },
            serial,
            displaced,
        }
    }

    fn clear(&mut self, i: usize) -> Entry {
        let e = *self.entry(i);
        *self.entry_mut(i) = Entry::EMPTY;
        self.tags[i / WAYS][i % WAYS] = 0;
        self.len -= 1;
        e
    }
}

#[cfg(test)]
mod tests {
    use super::super::state::tcp;
    use super::*;
    use crate::service::Method;
    use proptest::prelude::*;

    fn key(n: u32) -> FlowKey {
        let b = n.to_be_bytes();
        FlowKey::flow(
            4,
            6,
            xvs_wire::summary::v4_mapped([198, 18, b[2], b[3]]),
            1024 + (n >> 16) as u16,
            xvs_wire::summary::v4_mapped([198, 18, 1, 10]),
            80,
        )
    }

    /// A forward entry; an established one has shown data ([`Entry::VERIFIED`]).
    fn fwd(n: u32, state: u8, expires: u32) -> Entry {
        let mut e = Entry::forward(key(n), 0, n, Method::Dr);
        e.state = state;
        e.expires = expires;
        if state == tcp::ESTABLISHED {
            e.flags = Entry::VERIFIED;
        }
        e
    }

    fn put(t: &ConnTable, e: Entry, now: u32) -> Insert {
        t.insert(t.hash(&e.key), e, now)
    }

    #[test]
    fn a_vacancy_is_used_only_while_the_shard_is_unchanged() {
        let t = ConnTable::new(1024, 1);
        let (k1, k2) = (key(1), key(2));
        let (h1, h2) = (t.hash(&k1), t.hash(&k2));
        let (l, v) = t.lookup_vacancy(&k1, h1, 0, |_, _| ());
        assert_eq!(l, Lookup::Miss);
        assert!(matches!(
            t.insert_at(v, h1, fwd(1, tcp::SYN_RECV, 100), 0),
            Insert::Inserted { .. }
        ));
        assert!(matches!(
            t.lookup(&k1, h1, 0, |e, _| e.real()),
            Lookup::Hit(1)
        ));
        // The same vacancy again: the shard changed, so the insert probes and finds the key.
        assert_eq!(
            t.insert_at(v, h1, fwd(1, tcp::SYN_RECV, 100), 0),
            Insert::Exists
        );
        // A vacancy for another key whose shard saw an insert since: still placed correctly.
        let (_, v2) = t.lookup_vacancy(&k2, h2, 0, |_, _| ());
        put(&t, fwd(3, tcp::SYN_RECV, 100), 0);
        assert!(matches!(
            t.insert_at(v2, h2, fwd(2, tcp::SYN_RECV, 100), 0),
            Insert::Inserted { .. }
        ));
        assert!(matches!(
            t.lookup(&k2, h2, 0, |e, _| e.real()),
            Lookup::Hit(2)
        ));
        assert_eq!(t.len(), 3);
        // A hit carries no vacancy.
        let (l, v) = t.lookup_vacancy(&k2, h2, 0, |e, _| e.real());
        assert_eq!((l, v), (Lookup::Hit(2), Vacancy::default()));
    }

    #[test]
    fn insert_lookup_update_remove() {
        let t = ConnTable::new(1024, 1);
        assert!(matches!(
            put(&t, fwd(1, tcp::SYN_RECV, 100), 0),
            Insert::Inserted { .. }
        ));
        assert_eq!(put(&t, fwd(1, tcp::SYN_RECV, 100), 0), Insert::Exists);
        let k = key(1);
        let h = t.hash(&k);
        let got = t.lookup(&k, h, 50, |e, _| {
            e.state = tcp::ESTABLISHED;
            e.expires = 950;
            e.real()
        });
        assert_eq!(got, Lookup::Hit(1));
        assert_eq!(
            t.lookup(&k, h, 60, |e, _| e.state),
            Lookup::Hit(tcp::ESTABLISHED)
        );
        assert_eq!(
            t.lookup(&key(2), t.hash(&key(2)), 60, |_, _| ()),
            Lookup::Miss
        );
        assert_eq!(t.len(), 1);
        assert!(t.remove(&k, h, |e| e.real() == 2).is_none());
        assert_eq!(t.remove(&k, h, |_| true).unwrap().real(), 1);
        assert!(t.is_empty());
    }

    #[test]
    fn lazy_expiry_on_lookup() {
        let t = ConnTable::new(64, 1);
        put(&t, fwd(7, tcp::ESTABLISHED, 10), 0);
        let k = key(7);
        assert!(matches!(
            t.lookup(&k, t.hash(&k), 9, |_, _| ()),
            Lookup::Hit(())
        ));
        assert!(
            matches!(t.lookup(&k, t.hash(&k), 10, |_, _| ()), Lookup::Expired(e) if e.real() == 7)
        );
        assert!(t.is_empty());
    }

    #[test]
    fn slot_refs_detect_reuse() {
        let t = ConnTable::new(64, 1);
        let Insert::Inserted { slot, serial, .. } = put(&t, fwd(3, tcp::ESTABLISHED, 100), 0)
        else {
            panic!()
        };
        assert_eq!(t.with_slot(slot, serial, 5, |e| e.real()), Lookup::Hit(3));
        assert_eq!(t.with_slot(slot, serial + 1, 5, |e| e.real()), Lookup::Miss);
        t.remove(&key(3), t.hash(&key(3)), |_| true);
        assert_eq!(t.with_slot(slot, serial, 5, |e| e.real()), Lookup::Miss);
    }

    #[test]
    fn capacity_is_bounded_and_established_survive_a_syn_flood() {
        let t = ConnTable::new(1024, 9);
        let cap = t.capacity();
        // Fill half with established connections.
        let mut established = 0;
        for n in 0..(cap / 2) as u32 {
            if matches!(
                put(&t, fwd(n, tcp::ESTABLISHED, 10_000), 0),
                Insert::Inserted { .. }
            ) {
                established += 1;
            }
        }
        assert_eq!(established, cap / 2);
        // A flood of ten times the capacity of embryonic entries.
        let (mut full, mut evicted_est) = (0, 0);
        for n in 0..(cap * 10) as u32 {
            match put(&t, fwd(1_000_000 + n, tcp::SYN_RECV, 60 + n / 1000), 0) {
                Insert::Full => full += 1,
                Insert::Inserted {
                    displaced: Some(d), ..
                } if d.entry.state == tcp::ESTABLISHED => {
                    evicted_est += 1;
                }
                _ => {}
            }
        }
        assert!(t.len() <= cap);
        assert!(
            t.len() > cap * 9 / 10,
            "two-choice buckets fill: {} of {cap}",
            t.len()
        );
        assert_eq!(evicted_est, 0, "no established entry was evicted by a SYN");
        // Established entries that never showed data are fair game: a flood evicts them.
        let u = ConnTable::new(1024, 9);
        for n in 0..(cap / 2) as u32 {
            let mut e = fwd(n, tcp::ESTABLISHED, 10_000);
            e.flags = 0;
            put(&u, e, 0);
        }
        let mut evicted_unverified = 0;
        for n in 0..(cap * 10) as u32 {
            if let Insert::Inserted {
                displaced: Some(d), ..
            } = put(&u, fwd(1_000_000 + n, tcp::SYN_RECV, 60 + n / 1000), 0)
            {
                evicted_unverified += u32::from(d.entry.state == tcp::ESTABLISHED);
            }
        }
        assert!(
            evicted_unverified > 0,
            "unverified established entries give way"
        );
        assert!(full > 0);
        for n in 0..(cap / 2) as u32 {
            let k = key(n);
            assert!(matches!(
                t.lookup(&k, t.hash(&k), 1, |_, _| ()),
                Lookup::Hit(())
            ));
        }
    }

    #[test]
    fn expired_entries_are_replaced_first_and_swept() {
        let t = ConnTable::new(64, 3);
        let cap = t.capacity() as u32;
        for n in 0..cap * 4 {
            put(&t, fwd(n, tcp::ESTABLISHED, 5), 0);
        }
        let before = t.len();
        // A newcomer both of whose buckets are full (no free slot seen at time 0).
        let crowded = (100_000u32..)
            .find(|&n| {
                let k = key(n);
                t.lookup_vacancy(&k, t.hash(&k), 0, |_, _| ()).1.slot == 0
            })
            .expect("a full table has crowded buckets");
        // At time 6 everything is expired: it replaces an expired entry, evicting nothing live.
        let r = put(&t, fwd(crowded, tcp::SYN_RECV, 100), 6);
        assert!(
            matches!(
                r,
                Insert::Inserted {
                    displaced: Some(Displaced { expired: true, .. }),
                    ..
                }
            ),
            "{r:?}"
        );
        let mut seen = 0;
        let gone = t.sweep(0, t.shard_count(), 6, |_| seen += 1);
        assert_eq!(gone, seen);
        assert_eq!(t.len(), 1);
        assert!(before > 1);
    }

    proptest! {
        /// The table agrees with a model map under random inserts, lookups and removals.
        #[test]
        fn behaves_like_a_map(ops in proptest::collection::vec((0u8..3, 0u32..200), 1..400)) {
            let t = ConnTable::new(4096, 5);
            let mut model = std::collections::HashMap::new();
            for (op, n) in ops {
                let k = key(n);
                let h = t.hash(&k);
                match op {
                    0 => {
                        let r = t.insert(h, fwd(n, tcp::ESTABLISHED, 1000), 0);
                        prop_assert_eq!(matches!(r, Insert::Exists), model.contains_key(&n));
                        model.insert(n, ());
                    }
                    1 => {
                        let hit = matches!(t.lookup(&k, h, 0, |e, _| e.real()), Lookup::Hit(r) if r == n);
                        prop_assert_eq!(hit, model.contains_key(&n));
                    }
                    _ => {
                        let r = t.remove(&k, h, |_| true);
                        prop_assert_eq!(r.is_some(), model.remove(&n).is_some());
                    }
                }
            }
            prop_assert_eq!(t.len(), model.len());
        }
    }
}
