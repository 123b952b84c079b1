//! Replays established DR flows through the forwarder and prints the cost per packet.
//!
//! `cargo run --release -p xvs-core --example replay -- N [FLOWS] [--new] [--sched=NAME]
//! [--threads=T]`
//!
//! Builds a DR service with four real servers, pre-builds one frame per flow (FLOWS distinct
//! established TCP flows, default 1024) into one buffer, opens every flow (SYN, ACK) to warm the
//! table, then passes N frames through `Forwarder::process` in batches of 64, cycling over the
//! pool. The DR rewrite is idempotent, so the same frames can be reused. Nothing but forwarding
//! grows with N: no allocation, no clock inside the loop (time is fixed), so the per-packet cost
//! can be counted exactly with `valgrind --tool=callgrind` as the difference between two N.
//!
//! With `--new`, every replayed frame is instead the SYN of a connection never seen before
//! (source address advanced in place, the IPv4 ID moved the opposite way so the header
//! checksum stays right): the cost of scheduling and inserting a connection. The
//! table (8 Mi entries) is sized so that up to 4 million new connections fit without eviction.
//! `--sched=NAME` picks the service's scheduler (default `wrr`).
//!
//! `--threads=T` runs T forwarders at once, as T workers would (each its own flows and frames,
//! all sharing the connection table and the counters), N packets each, and reports their
//! aggregate rate: how the forwarding core scales with workers when I/O is not the limit.

use std::sync::Arc;
use std::time::Instant;
use xvs_core::conn::{ConnTable, Timeouts};
use xvs_core::service::{Method, Protocol, RealOptions, ServiceOptions, ServiceTable};
use xvs_core::stats::Stats;
use xvs_core::{Forwarder, Frame, Options, Snapshot, Time, Verdict};
use xvs_testkit::lab::{self, EXT, from_client};
use xvs_testkit::pkt::{ip, tcp};

/// The virtual service's address.
const VIP: &str = "198.51.100.50";
const BATCH: usize = 64;
const SLOT: usize = 2048;
const HEADROOM: usize = 256;

fn main() {
    let new_conns = std::env::args().any(|a| a == "--new");
    let sched = std::env::args()
        .find_map(|a| a.strip_prefix("--sched=").map(str::to_owned))
        .unwrap_or_else(|| "wrr".into());
    let mut args = std::env::args().skip(1).filter(|a| !a.starts_with("--"));
    let n: u64 = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000_000);
    let flows: usize = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1024)
        .max(BATCH);
    let threads: usize = std::env::args()
        .find_map(|a| a.strip_prefix("--threads=").and_then(|v| v.parse().ok()))
        .unwrap_or(1)
        .max(1);

    let key = lab::svc(Protocol::Tcp, VIP, 80);
    let mut t = ServiceTable::new(16, 64);
    t.add_service(
        key,
        ServiceOptions {
            scheduler: sched.clone(),
            ..Default::default()
        },
    )
    .expect("service");
    for (i, rs) in [lab::RS1, lab::RS2, "198.18.1.14", "198.18.1.15"]
        .iter()
        .enumerate()
    {
        let o = RealOptions {
            method: Method::Dr,
            weight: 1 + i as u32,
            ..Default::default()
        };
        t.add_real(&key, ip(rs), None, o).expect("real");
    }
    let mut net = lab::net();
    net.set_neighbour(ip("198.18.1.14"), lab::INT, lab::RS3_MAC);
    net.set_neighbour(ip("198.18.1.15"), lab::INT, lab::RS3_MAC);
    let snap = Snapshot::new(
        Arc::new(t),
        Arc::new(net),
        Timeouts::default(),
        Options::default(),
        1,
    );
    // Fixed sizes (independent of N, so that only forwarding grows with N): room for four
    // million new connections without eviction.
    let capacity = if new_conns { 1 << 23 } else { 1 << 16 };
    let table = Arc::new(ConnTable::new(capacity * threads, 0x5eed));
    let stats = Arc::new(Stats::new(threads, 64));
    let now = Time::from_secs(100);
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            let (table, stats, snap) = (Arc::clone(&table), Arc::clone(&stats), &snap);
            s.spawn(move || {
                let fw = Forwarder::new(table, stats, t, 1 + t as u64);
                replay(fw, snap, now, n, flows, t, new_conns);
            });
        }
    });
    let elapsed = start.elapsed();
    let packets = n.div_ceil(BATCH as u64) * BATCH as u64 * threads as u64;
    let g = stats.global();
    let warm_up = if new_conns {
        0
    } else {
        2 * (flows * threads) as u64
    };
    let tx = g.tx_frames - warm_up;
    assert_eq!(tx, packets, "every replayed frame must be forwarded: {g:?}");
    let what = if new_conns {
        assert_eq!(
            g.conns_created, packets,
            "every replayed SYN is a new connection"
        );
        "new DR connections (4 servers)"
    } else {
        "packets of established DR flows"
    };
    let mpps = packets as f64 / elapsed.as_secs_f64() / 1e6;
    if threads == 1 {
        println!(
            "replay [{sched}]: {packets} {what} over {flows} frame slots in batches of {BATCH}: \
             {:.1} ns/packet ({mpps:.2} Mpps on one core)",
            elapsed.as_nanos() as f64 / packets as f64,
        );
    } else {
        println!(
            "replay [{sched}]: {packets} {what}, {threads} threads of {flows} frame slots each \
             in batches of {BATCH}: {mpps:.2} Mpps together ({:.1} ns/packet per thread)",
            elapsed.as_nanos() as f64 * threads as f64 / packets as f64,
        );
    }
}

/// One forwarder's replay: its own flows (client addresses offset by `thread`), warmed up,
/// then `n` packets in batches.
fn replay(
    mut fw: Forwarder,
    snap: &Snapshot,
    now: Time,
    n: u64,
    flows: usize,
    thread: usize,
    new_conns: bool,
) {
    // One fixed-size slot per flow, frame at HEADROOM, as an AF_XDP UMEM would hold them.
    // Thread 0's clients are those of the single-threaded replay; others' come from
    // 198.19.0.0/16, two /24s each.
    let client = |i: usize| match thread {
        0 => format!("203.0.{}.{}", 113 + (i >> 16) as u8 % 2, (i >> 8) as u8),
        t => format!(
            "198.19.{}.{}",
            (2 * t) as u8 + (i >> 16) as u8 % 2,
            (i >> 8) as u8
        ),
    };
    let port = |i: usize| 10_000 + (i & 0xff) as u16 + ((i >> 8) as u16 & 0xff) * 256 % 50_000;
    let mut pool = vec![0u8; flows * SLOT];
    let mut lens = vec![0usize; flows];
    for i in 0..flows {
        let c = client(i);
        let mut open = |p: Vec<u8>| {
            let mut buf = vec![0u8; SLOT];
            buf[HEADROOM..HEADROOM + p.len()].copy_from_slice(&p);
            let mut f = [Frame::new(&mut buf, HEADROOM, p.len(), EXT)];
            let mut v = [Verdict::Pass];
            fw.process(snap, &mut f, &mut v, now);
            assert!(
                matches!(v[0], Verdict::Tx { .. }),
                "warm-up frame not forwarded: {:?}",
                v[0]
            );
        };
        if !new_conns {
            open(from_client(&tcp(&c, port(i), VIP, 80).syn()));
            open(from_client(&tcp(&c, port(i), VIP, 80).ack()));
        }
        let f = if new_conns {
            from_client(&tcp(&c, port(i), VIP, 80).syn())
        } else {
            from_client(&tcp(&c, port(i), VIP, 80).ack().payload(&[0x61; 18]))
        };
        pool[i * SLOT + HEADROOM..i * SLOT + HEADROOM + f.len()].copy_from_slice(&f);
        lens[i] = f.len();
    }

    let mut verdicts = [Verdict::Pass; BATCH];
    let batches = n.div_ceil(BATCH as u64);
    // The frames of every group, built once (as a worker's descriptors are): the loop below
    // costs nothing but forwarding.
    let mut groups: Vec<Vec<Frame<'_>>> = pool
        .chunks_exact_mut(BATCH * SLOT)
        .zip(lens.chunks_exact(BATCH))
        .map(|(chunk, lens)| {
            chunk
                .chunks_exact_mut(SLOT)
                .zip(lens)
                .map(|(buf, &len)| Frame::new(buf, HEADROOM, len, EXT))
                .collect()
        })
        .collect();
    let count = groups.len();
    for b in 0..batches {
        let frames = &mut groups[(b as usize) % count];
        if new_conns {
            // A fresh 5-tuple per slot: advance the low word of the source address (slots
            // differ by port, so no two slots meet) and move the IP ID the other way so the
            // header checksum is unchanged.
            for f in frames.iter_mut() {
                let f = f.data_mut();
                let a = u16::from_be_bytes([f[28], f[29]]).wrapping_add(1);
                f[28..30].copy_from_slice(&a.to_be_bytes());
                let id = u16::from_be_bytes([f[18], f[19]]).wrapping_sub(1);
                f[18..20].copy_from_slice(&id.to_be_bytes());
            }
        }
        fw.process(snap, frames, &mut verdicts, now);
    }
}
