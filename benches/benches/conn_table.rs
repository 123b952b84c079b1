//! Connection-table lookup cost, warm and cold: a 16 Ki-slot table (fits in cache) against an
//! 8 Mi-slot table (about 570 MB: every lookup misses the caches and, mostly, the TLB), each
//! half full, looked up in a scattered order. Each iteration is one hash plus one lookup of a
//! live entry (a hit), as an established packet costs.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use xvs_core::conn::{ConnTable, Entry, FlowKey, Lookup};
use xvs_core::service::Method;

fn key(n: u32) -> FlowKey {
    let b = n.to_be_bytes();
    FlowKey::flow(
        4,
        6,
        xvs_wire::summary::v4_mapped([198, 19, b[2], b[3]]),
        1024 + (n >> 16) as u16,
        xvs_wire::summary::v4_mapped([198, 18, 0, 10]),
        80,
    )
}

/// A table of `slots` slots with `slots / 2` connections inserted, and the keys of those it
/// holds in a scattered order (a multiplicative permutation of the insertion order).
fn filled(slots: usize) -> (ConnTable, Vec<FlowKey>) {
    let t = ConnTable::new(slots, 7);
    let n = (slots / 2) as u32;
    for i in 0..n {
        let mut e = Entry::forward(key(i), 0, 1, Method::Dr);
        e.expires = u32::MAX;
        t.insert(t.hash(&e.key), e, 0);
    }
    // Only keys still present (a full pair of buckets evicts, as under a flood).
    let keys: Vec<FlowKey> = (0..n)
        .map(|i| key((u64::from(i) * 2_654_435_761 % u64::from(n)) as u32))
        .filter(|k| matches!(t.lookup(k, t.hash(k), 1, |_, _| ()), Lookup::Hit(())))
        .collect();
    assert!(keys.len() as u32 > n * 9 / 10, "{} of {n} kept", keys.len());
    (t, keys)
}

fn lookup(c: &mut Criterion) {
    let mut g = c.benchmark_group("conn_lookup");
    g.throughput(Throughput::Elements(1));
    for (name, slots) in [("warm_16Ki", 1 << 14), ("cold_8Mi", 1 << 23)] {
        let (t, keys) = filled(slots);
        let mut i = 0;
        g.bench_function(name, |b| {
            b.iter(|| {
                let k = &keys[i];
                i = (i + 1) % keys.len();
                let h = t.hash(k);
                match t.lookup(k, h, 1, |e, _| e.real()) {
                    Lookup::Hit(r) => black_box(r),
                    _ => panic!("a live connection was not found"),
                }
            });
        });
    }
    g.finish();
}

criterion_group!(benches, lookup);
criterion_main!(benches);
