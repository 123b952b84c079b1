//! Criterion benchmarks of the forwarding core (per-packet and per-connection costs).
//!
//! - `established_dr`: a 64-frame batch over established DR flows (the hot path).
//! - `new_connection/<sched>`: a 64-frame batch of SYNs opening new connections, per scheduler.
//! - `nat_reply`: a real server's reply on an established NAT connection (SNAT back).
//! - `tun_encap`: an established TUN flow (IPIP encapsulation).
//! - `batch64_mixed`: 64 frames mixing DR, NAT requests and replies, and TUN.
//!
//! Frames that a rewrite changes (NAT, TUN) come from a fresh copy of their buffers for each
//! batch, made outside the measured time.

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::sync::Arc;
use xvs_core::conn::{ConnTable, Timeouts};
use xvs_core::service::{Method, Protocol, RealOptions, ServiceOptions, ServiceTable};
use xvs_core::stats::Stats;
use xvs_core::{Forwarder, Frame, Options, Snapshot, Time, Verdict};
use xvs_testkit::lab::*;
use xvs_testkit::pkt::*;

const BATCH: usize = 64;
const SLOT: usize = 2048;
const HEADROOM: usize = 256;

/// Frames laid out in fixed slots, as an AF_XDP UMEM would hold them.
#[derive(Clone)]
struct Pool {
    buf: Vec<u8>,
    frames: Vec<(u16, Vec<u8>)>,
}

impl Pool {
    fn new(frames: Vec<(u16, Vec<u8>)>) -> Pool {
        let mut p = Pool {
            buf: vec![0; frames.len() * SLOT],
            frames,
        };
        p.refill();
        p
    }

    fn refill(&mut self) {
        for (i, (_, f)) in self.frames.iter().enumerate() {
            self.buf[i * SLOT + HEADROOM..i * SLOT + HEADROOM + f.len()].copy_from_slice(f);
        }
    }

    fn run(&mut self, fw: &mut Forwarder, snap: &Snapshot, verdicts: &mut [Verdict]) {
        let lens: Vec<(u16, usize)> = self.frames.iter().map(|(p, f)| (*p, f.len())).collect();
        let mut frames: Vec<Frame<'_>> = self
            .buf
            .chunks_exact_mut(SLOT)
            .zip(&lens)
            .map(|(b, (port, len))| Frame::new(b, HEADROOM, *len, *port))
            .collect();
        fw.process(snap, &mut frames, verdicts, Time::from_secs(10));
    }
}

fn client(i: usize) -> String {
    format!("203.0.{}.{}", 113 + i / 250, 1 + i % 250)
}

/// Opens `n` connections to `vip` (SYN, ACK) and returns the ACK frames that continue them.
fn establish(fw: &mut Forwarder, snap: &Snapshot, vip: &str, n: usize) -> Vec<(u16, Vec<u8>)> {
    (0..n)
        .map(|i| {
            let c = client(i);
            run(
                fw,
                snap,
                EXT,
                &from_client(&tcp(&c, 40000, vip, 80).syn()),
                1,
            );
            let ack = from_client(&tcp(&c, 40000, vip, 80).ack().payload(&[0x61; 18]));
            let (v, _) = run(fw, snap, EXT, &ack, 1);
            assert!(matches!(v, Verdict::Tx { .. }), "{vip}: {v:?}");
            (EXT, ack)
        })
        .collect()
}

fn established_dr(c: &mut Criterion) {
    let snap = snapshot();
    let mut fw = forwarder();
    let mut pool = Pool::new(establish(&mut fw, &snap, VIP_DR, BATCH));
    let mut v = [Verdict::Pass; BATCH];
    let mut g = c.benchmark_group("forwarder");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_function("established_dr", |b| {
        b.iter(|| pool.run(&mut fw, &snap, black_box(&mut v)));
    });
    g.finish();
}

fn new_connection(c: &mut Criterion) {
    let mut g = c.benchmark_group("new_connection");
    g.throughput(Throughput::Elements(BATCH as u64));
    for sched in xvs_core::service::SCHEDULERS {
        let vip = "198.51.100.60";
        let key = svc(Protocol::Tcp, vip, 80);
        let mut t = ServiceTable::new(8, 64);
        t.add_service(
            key,
            ServiceOptions {
                scheduler: sched.into(),
                ..Default::default()
            },
        )
        .unwrap();
        for (i, rs) in [RS1, RS2].iter().enumerate() {
            let o = RealOptions {
                method: Method::Dr,
                weight: 1 + i as u32,
                ..Default::default()
            };
            t.add_real(&key, ip(rs), None, o).unwrap();
        }
        let snap = Snapshot::new(
            Arc::new(t),
            Arc::new(net()),
            Timeouts::default(),
            Options::default(),
            1,
        );
        let table = Arc::new(ConnTable::new(1 << 14, 1));
        let mut fw = Forwarder::new(Arc::clone(&table), Arc::new(Stats::new(1, 64)), 0, 1);
        let frames: Vec<(u16, Vec<u8>)> = (0..BATCH)
            .map(|i| (EXT, from_client(&tcp(&client(i), 1024, vip, 80).syn())))
            .collect();
        let pool = Pool::new(frames);
        g.bench_function(sched, |b| {
            b.iter_batched_ref(
                || {
                    // The same 64 SYNs, new again: the table is emptied outside the timing.
                    table.retain(|_| false);
                    (pool.clone(), [Verdict::Pass; BATCH])
                },
                |(p, v)| p.run(&mut fw, &snap, v),
                BatchSize::SmallInput,
            );
        });
    }
    g.finish();
}

fn nat_reply(c: &mut Criterion) {
    let snap = snapshot();
    let mut fw = forwarder();
    let replies: Vec<(u16, Vec<u8>)> = (0..BATCH)
        .map(|i| {
            let c = client(i);
            run(
                &mut fw,
                &snap,
                EXT,
                &from_client(&tcp(&c, 40000, VIP_NAT, 80).syn()),
                1,
            );
            (
                INT,
                eth(
                    INT_MAC,
                    RS1_MAC,
                    &tcp(RS1, 8080, &c, 40000).ack().payload(&[0x62; 100]),
                ),
            )
        })
        .collect();
    let pool = Pool::new(replies);
    let mut g = c.benchmark_group("forwarder");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_function("nat_reply", |b| {
        b.iter_batched_ref(
            || (pool.clone(), [Verdict::Pass; BATCH]),
            |(p, v)| p.run(&mut fw, &snap, v),
            BatchSize::SmallInput,
        );
    });
    g.finish();
}

fn tun_encap(c: &mut Criterion) {
    let snap = snapshot();
    let mut fw = forwarder();
    let pool = Pool::new(establish(&mut fw, &snap, VIP_TUN, BATCH));
    let mut g = c.benchmark_group("forwarder");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_function("tun_encap", |b| {
        b.iter_batched_ref(
            || (pool.clone(), [Verdict::Pass; BATCH]),
            |(p, v)| p.run(&mut fw, &snap, v),
            BatchSize::SmallInput,
        );
    });
    g.finish();
}

fn batch64_mixed(c: &mut Criterion) {
    let snap = snapshot();
    let mut fw = forwarder();
    let mut frames = establish(&mut fw, &snap, VIP_DR, 16);
    frames.extend(establish(&mut fw, &snap, VIP_TUN, 16));
    for i in 0..16 {
        let c = client(100 + i);
        run(
            &mut fw,
            &snap,
            EXT,
            &from_client(&tcp(&c, 40000, VIP_NAT, 80).syn()),
            1,
        );
        frames.push((EXT, from_client(&tcp(&c, 40000, VIP_NAT, 80).ack())));
        frames.push((INT, eth(INT_MAC, RS1_MAC, &tcp(RS1, 8080, &c, 40000).ack())));
    }
    let pool = Pool::new(frames);
    let mut g = c.benchmark_group("forwarder");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_function("batch64_mixed", |b| {
        b.iter_batched_ref(
            || (pool.clone(), [Verdict::Pass; BATCH]),
            |(p, v)| p.run(&mut fw, &snap, v),
            BatchSize::SmallInput,
        );
    });
    g.finish();
}

criterion_group!(
    benches,
    established_dr,
    new_connection,
    nat_reply,
    tun_encap,
    batch64_mixed
);
criterion_main!(benches);
