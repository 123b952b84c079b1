//! Behaviour over time and across workers: counters and gauges, expiry, quiescing and removing
//! real servers, the table filling up, neighbour resolution requests, and a NAT reply handled by
//! a different worker than its request.

use std::sync::Arc;
use xvs_core::conn::ConnTable;
use xvs_core::service::{Protocol, RealOptions};
use xvs_core::stats::Stats;
use xvs_core::{DropReason, Forwarder, Options, Snapshot, Verdict};
use xvs_testkit::lab::*;
use xvs_testkit::pkt::*;

fn real_id(snap: &Snapshot, vip: &str, rs: &str) -> u32 {
    let svc = snap.services.find(&svc(Protocol::Tcp, vip, 80)).unwrap();
    snap.services.find_real(svc, &ip(rs), 80).unwrap().id
}

#[test]
fn dr_counters_and_active_inactive_gauges() {
    let snap = snapshot();
    let mut fw = forwarder();
    let rs1 = real_id(&snap, VIP_DR, RS1);
    let stats = Arc::clone(fw.stats());
    let syn = tcp(CLIENT, 40000, VIP_DR, 80).syn();
    run(&mut fw, &snap, EXT, &from_client(&syn), 1);
    let t = stats.real_totals(rs1);
    assert_eq!(
        (t.conns, t.active, t.inactive),
        (1, 0, 1),
        "SYN_RECV is inactive"
    );
    assert_eq!((t.in_pkts, t.in_bytes), (1, 40));
    run(
        &mut fw,
        &snap,
        EXT,
        &from_client(&tcp(CLIENT, 40000, VIP_DR, 80).ack()),
        2,
    );
    let t = stats.real_totals(rs1);
    assert_eq!((t.active, t.inactive), (1, 0), "ESTABLISHED is active");
    run(
        &mut fw,
        &snap,
        EXT,
        &from_client(&tcp(CLIENT, 40000, VIP_DR, 80).fin().ack()),
        3,
    );
    let t = stats.real_totals(rs1);
    assert_eq!(
        (t.active, t.inactive, t.in_pkts),
        (0, 1, 3),
        "FIN_WAIT is inactive"
    );
    let sid = snap
        .services
        .find(&svc(Protocol::Tcp, VIP_DR, 80))
        .unwrap()
        .id;
    let s = stats.service_totals(snap.services.reals_of(sid));
    assert_eq!((s.conns, s.in_pkts, s.out_pkts), (1, 3, 0));
    let g = stats.global();
    assert_eq!((g.rx_frames, g.tx_frames, g.conns_created), (3, 3, 1));
}

#[test]
fn nat_counts_both_directions() {
    let snap = snapshot();
    let mut fw = forwarder();
    let svc_nat = snap
        .services
        .find(&svc(Protocol::Tcp, VIP_NAT, 80))
        .unwrap();
    let rs1 = snap.services.find_real(svc_nat, &ip(RS1), 8080).unwrap().id;
    run(
        &mut fw,
        &snap,
        EXT,
        &from_client(&tcp(CLIENT, 40001, VIP_NAT, 80).syn()),
        1,
    );
    run(
        &mut fw,
        &snap,
        INT,
        &eth(INT_MAC, RS1_MAC, &tcp(RS1, 8080, CLIENT, 40001).syn().ack()),
        1,
    );
    run(
        &mut fw,
        &snap,
        EXT,
        &from_client(&tcp(CLIENT, 40001, VIP_NAT, 80).ack()),
        1,
    );
    let t = fw.stats().real_totals(rs1);
    assert_eq!((t.in_pkts, t.out_pkts, t.active), (2, 1, 1));
}

#[test]
fn connections_expire_and_sweeps_settle_the_gauges() {
    let snap = snapshot();
    let mut fw = forwarder();
    let rs1 = real_id(&snap, VIP_DR, RS1);
    run(
        &mut fw,
        &snap,
        EXT,
        &from_client(&tcp(CLIENT, 40000, VIP_DR, 80).syn()),
        10,
    );
    // The request: data verifies the connection (a handshake alone keeps 60 s).
    run(
        &mut fw,
        &snap,
        EXT,
        &from_client(&tcp(CLIENT, 40000, VIP_DR, 80).ack().payload(b"GET /")),
        10,
    );
    assert_eq!(fw.stats().real_totals(rs1).active, 1);
    // Established lives 900 s: at 909 s the ACK still belongs to it.
    let (v, _) = run(
        &mut fw,
        &snap,
        EXT,
        &from_client(&tcp(CLIENT, 40000, VIP_DR, 80).ack()),
        909,
    );
    assert_eq!(v, Verdict::Tx { port: INT });
    // 900 s of silence later the entry is gone: a stray ACK meets no connection.
    let (v, _) = run(
        &mut fw,
        &snap,
        EXT,
        &from_client(&tcp(CLIENT, 40000, VIP_DR, 80).ack()),
        1809,
    );
    assert_eq!(v, Verdict::Drop(DropReason::NoConnection));
    let t = fw.stats().real_totals(rs1);
    assert_eq!(
        (t.active, t.inactive),
        (0, 0),
        "lazy expiry released the gauge"
    );
    // A sweep does the same for entries nobody touches.
    run(
        &mut fw,
        &snap,
        EXT,
        &from_client(&tcp(CLIENT, 40500, VIP_DR, 80).syn()),
        2000,
    );
    assert_eq!(fw.stats().real_totals(rs1).inactive, 1);
    let table = Arc::clone(fw.table());
    let mut gone = Vec::new();
    table.sweep(0, table.shard_count(), 2000 + 60, |e| gone.push(*e));
    assert_eq!(gone.len(), 1, "SYN_RECV lives 60 s");
    assert!(table.is_empty());
}

#[test]
fn quiesced_server_keeps_its_connections_but_gets_no_new_ones() {
    let mut fw = forwarder();
    let snap = snapshot();
    run(
        &mut fw,
        &snap,
        EXT,
        &from_client(&tcp(CLIENT, 40000, VIP_DR, 80).syn()),
        1,
    );
    let mut t = services();
    let o = RealOptions {
        weight: 0,
        ..RealOptions::default()
    };
    t.edit_real(&svc(Protocol::Tcp, VIP_DR, 80), ip(RS1), None, o)
        .unwrap();
    let quiet = snapshot_of(t, 2);
    let (v, out) = run(
        &mut fw,
        &quiet,
        EXT,
        &from_client(&tcp(CLIENT, 40000, VIP_DR, 80).ack()),
        2,
    );
    assert_eq!(
        v,
        Verdict::Tx { port: INT },
        "existing connection continues"
    );
    assert_eq!(&out[..6], &RS1_MAC.0);
    let (v, _) = run(
        &mut fw,
        &quiet,
        EXT,
        &from_client(&tcp(CLIENT, 40001, VIP_DR, 80).syn()),
        2,
    );
    assert_eq!(
        v,
        Verdict::Tx { port: EXT },
        "a new one is refused with ICMP port unreachable"
    );
    assert_eq!(fw.stats().drops(DropReason::NoRealServer), 1);
}

#[test]
fn removed_server_finishes_its_connections_unless_expire_nodest_conn() {
    for expire in [false, true] {
        let mut fw = forwarder();
        run(
            &mut fw,
            &snapshot(),
            EXT,
            &from_client(&tcp(CLIENT, 40000, VIP_RR, 80).syn()),
            1,
        );
        let mut t = services();
        t.remove_real(&svc(Protocol::Tcp, VIP_RR, 80), ip(RS1), None)
            .unwrap();
        let mut snap = snapshot_of(t, 2);
        snap.options = Options {
            expire_nodest_conn: expire,
            ..Options::default()
        };
        let (v, out) = run(
            &mut fw,
            &snap,
            EXT,
            &from_client(&tcp(CLIENT, 40000, VIP_RR, 80).ack()),
            2,
        );
        if expire {
            assert_eq!(
                v,
                Verdict::Drop(DropReason::NoConnection),
                "connection expired; the ACK is a stray"
            );
        } else {
            assert_eq!(v, Verdict::Tx { port: INT });
            assert_eq!(&out[..6], &RS1_MAC.0, "still to the removed RS1");
        }
    }
}

#[test]
fn unknown_neighbours_are_reported_for_resolution() {
    let snap = snapshot();
    let mut fw = forwarder();
    for p in 0..3 {
        run(
            &mut fw,
            &snap,
            EXT,
            &from_client(&tcp(CLIENT, 43000 + p, VIP_UNRESOLVED, 80).syn()),
            1,
        );
    }
    let mut asked = Vec::new();
    fw.take_unresolved(|port, ip| asked.push((port, ip)));
    assert_eq!(
        asked,
        vec![(INT, xvs_core::service::addr16(&ip(RS3)))],
        "asked once"
    );
    assert_eq!(fw.stats().global().neigh_waits, 3, "they wait, not dropped");
    assert_eq!(fw.stats().drops(DropReason::UnknownNeighbour), 0);
    fw.take_unresolved(|_, _| panic!("already handed over"));
}

#[test]
fn a_frame_that_waited_goes_out_once_its_next_hop_is_known() {
    let snap = snapshot();
    let mut fw = forwarder();
    let syn = from_client(&tcp(CLIENT, 43000, VIP_UNRESOLVED, 80).syn());
    let (v, out) = run(&mut fw, &snap, EXT, &syn, 1);
    assert_eq!(v, Verdict::Wait);
    assert_eq!(out, syn, "a waiting frame is kept as it came");
    // The kernel resolved RS3: a new network state, the same frame offered again.
    let mut net = net();
    net.set_neighbour(ip(RS3), INT, RS3_MAC);
    let resolved = Snapshot::new(
        Arc::clone(&snap.services),
        Arc::new(net),
        snap.timeouts,
        snap.options,
        2,
    );
    let (v, out) = run(&mut fw, &resolved, EXT, &syn, 1);
    assert_eq!(v, Verdict::Tx { port: INT });
    assert_eq!(&out[..6], &RS3_MAC.0, "to RS3's MAC");
    assert_eq!(
        fw.stats().global().conns_created,
        1,
        "the connection made at the first offer carries the frame"
    );
}

#[test]
fn full_table_refuses_new_connections_and_keeps_established_ones() {
    let (mut fw, table, stats) = forwarder_with_table(64);
    let snap = snapshot();
    // Establish more connections than the table holds: it ends up full of established ones.
    let mut established = Vec::new();
    for p in 0..200u16 {
        let (v, _) = run(
            &mut fw,
            &snap,
            EXT,
            &from_client(&tcp(CLIENT, 1000 + p, VIP_DR, 80).syn()),
            1,
        );
        if v == (Verdict::Tx { port: INT }) {
            run(
                &mut fw,
                &snap,
                EXT,
                &from_client(&tcp(CLIENT, 1000 + p, VIP_DR, 80).ack().payload(b"GET /")),
                1,
            );
            established.push(1000 + p);
        }
    }
    assert!(
        established.len() >= 56,
        "two-choice buckets fill the table: {}",
        established.len()
    );
    let evicted_before = stats.global().conns_evicted;
    // A SYN flood of thirty times the capacity.
    for p in 0..2000u16 {
        run(
            &mut fw,
            &snap,
            EXT,
            &from_client(&tcp("203.0.113.99", 2000 + p, VIP_DR, 80).syn()),
            1,
        );
    }
    assert!(table.len() <= table.capacity());
    assert!(
        stats.drops(DropReason::TableFull) > 1900,
        "the flood met a full table"
    );
    assert_eq!(
        stats.global().conns_evicted,
        evicted_before,
        "no established entry was evicted"
    );
    for p in established {
        let (v, _) = run(
            &mut fw,
            &snap,
            EXT,
            &from_client(&tcp(CLIENT, p, VIP_DR, 80).ack()),
            1,
        );
        assert_eq!(
            v,
            Verdict::Tx { port: INT },
            "established flow {p} survived the flood"
        );
    }
}

#[test]
fn nat_reply_on_another_worker_translates() {
    let table = Arc::new(ConnTable::new(4096, 7));
    let stats = Arc::new(Stats::new(2, 256));
    let mut w0 = Forwarder::new(table.clone(), stats.clone(), 0, 11);
    let mut w1 = Forwarder::new(table.clone(), stats.clone(), 1, 12);
    let snap = snapshot();
    let (v, _) = run(
        &mut w0,
        &snap,
        EXT,
        &from_client(&tcp(CLIENT, 40001, VIP_NAT, 80).syn()),
        1,
    );
    assert_eq!(v, Verdict::Tx { port: INT });
    let (v, out) = run(
        &mut w1,
        &snap,
        INT,
        &eth(INT_MAC, RS1_MAC, &tcp(RS1, 8080, CLIENT, 40001).syn().ack()),
        1,
    );
    assert_eq!(v, Verdict::Tx { port: EXT });
    assert_eq!(
        out,
        eth(
            ROUTER_MAC,
            EXT_MAC,
            &tcp(VIP_NAT, 80, CLIENT, 40001).syn().ack().ttl(63)
        )
    );
    assert_eq!(
        stats
            .slot(0)
            .conns_created
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}

#[test]
fn fullnat_ports_do_not_collide_across_workers() {
    let table = Arc::new(ConnTable::new(8192, 7));
    let stats = Arc::new(Stats::new(2, 256));
    let mut ws = [
        Forwarder::new(table.clone(), stats.clone(), 0, 1),
        Forwarder::new(table.clone(), stats.clone(), 1, 2),
    ];
    let snap = snapshot();
    let mut seen = std::collections::HashSet::new();
    for p in 0..400u16 {
        let w = &mut ws[usize::from(p % 2)];
        let (v, out) = run(
            w,
            &snap,
            EXT,
            &from_client(&tcp(CLIENT, 20000 + p, VIP_FNAT, 80).syn()),
            1,
        );
        assert_eq!(v, Verdict::Tx { port: INT });
        let lport = u16::from_be_bytes([out[34], out[35]]);
        assert!(seen.insert(lport), "local port {lport} handed out twice");
    }
}

#[test]
fn tun_and_icmp_errors_work_without_headroom() {
    // AF_XDP buffers start at the frame: growing at the front moves the packet instead.
    let snap = snapshot();
    let mut fw = forwarder();
    let syn = from_client(&tcp(CLIENT, 40002, VIP_TUN, 80).syn());
    let mut buf = vec![0u8; 2048];
    buf[..syn.len()].copy_from_slice(&syn);
    let mut frames = [xvs_core::Frame::new(&mut buf, 0, syn.len(), EXT)];
    let mut v = [Verdict::Pass];
    fw.process(&snap, &mut frames, &mut v, xvs_core::Time::from_secs(1));
    assert_eq!(v[0], Verdict::Tx { port: INT });
    assert_eq!(frames[0].start(), 0);
    let want = eth(
        RS2_MAC,
        INT_MAC,
        &ipip(DIR_INT, RS2, &tcp(CLIENT, 40002, VIP_TUN, 80).syn()),
    );
    assert_eq!(frames[0].data(), &want[..]);
}

#[test]
fn sweeping_expires_nat_connections_with_their_reply_entries() {
    let snap = snapshot();
    let mut fw = forwarder();
    run(
        &mut fw,
        &snap,
        EXT,
        &from_client(&tcp(CLIENT, 40001, VIP_NAT, 80).syn()),
        1,
    );
    assert_eq!(fw.table().len(), 2, "forward and reply entries");
    let table = Arc::clone(fw.table());
    let n = fw.sweep(
        &snap,
        0,
        table.shard_count(),
        xvs_core::Time::from_secs(1000),
    );
    assert!(n >= 1);
    assert!(table.is_empty(), "the reply entry went with its connection");
    let svc_nat = snap
        .services
        .find(&svc(Protocol::Tcp, VIP_NAT, 80))
        .unwrap();
    let rs1 = snap.services.find_real(svc_nat, &ip(RS1), 8080).unwrap().id;
    assert_eq!(fw.stats().real_totals(rs1).inactive, 0);
}

#[test]
fn a_reused_client_port_takes_over_a_closing_nat_reply_key() {
    // Two NAT services to the same real server port: a client that reuses its source port for
    // the second one meets the first connection's reply key.
    let mut t = services();
    let k2 = svc(Protocol::Tcp, VIP_NAT, 81);
    t.add_service(
        k2,
        xvs_core::service::ServiceOptions {
            scheduler: "rr".into(),
            ..Default::default()
        },
    )
    .unwrap();
    let o = RealOptions {
        method: xvs_core::service::Method::Nat,
        ..RealOptions::default()
    };
    t.add_real(&k2, ip(RS1), Some(8080), o).unwrap();
    let snap = snapshot_of(t, 1);
    let mut fw = forwarder();
    let first = |p: &dyn Fn(Tcp) -> Tcp| from_client(&p(tcp(CLIENT, 40001, VIP_NAT, 80)));
    run(&mut fw, &snap, EXT, &first(&|t| t.syn()), 1);
    // While the first connection lives, the second is refused.
    let (v, _) = run(
        &mut fw,
        &snap,
        EXT,
        &from_client(&tcp(CLIENT, 40001, VIP_NAT, 81).syn()),
        2,
    );
    assert_eq!(v, Verdict::Drop(DropReason::Conflict));
    // Once it is closing (FIN both ways, ACK: TIME_WAIT), the second takes the key over.
    run(&mut fw, &snap, EXT, &first(&|t| t.ack()), 3);
    run(&mut fw, &snap, EXT, &first(&|t| t.fin().ack()), 4);
    run(
        &mut fw,
        &snap,
        INT,
        &eth(INT_MAC, RS1_MAC, &tcp(RS1, 8080, CLIENT, 40001).fin().ack()),
        5,
    );
    let (v, out) = run(
        &mut fw,
        &snap,
        EXT,
        &from_client(&tcp(CLIENT, 40001, VIP_NAT, 81).syn()),
        6,
    );
    assert_eq!(v, Verdict::Tx { port: INT });
    assert_eq!(
        out,
        eth(
            RS1_MAC,
            INT_MAC,
            &tcp(CLIENT, 40001, RS1, 8080).syn().ttl(63)
        )
    );
    let (v, out) = run(
        &mut fw,
        &snap,
        INT,
        &eth(INT_MAC, RS1_MAC, &tcp(RS1, 8080, CLIENT, 40001).syn().ack()),
        7,
    );
    assert_eq!(v, Verdict::Tx { port: EXT });
    assert_eq!(
        out,
        eth(
            ROUTER_MAC,
            EXT_MAC,
            &tcp(VIP_NAT, 81, CLIENT, 40001).syn().ack().ttl(63)
        ),
        "replies map to the new service"
    );
}

/// A DR `mh` service on VIP_RR:80 with RS1 and RS2 added in `order`.
fn mh_snapshot(order: [&str; 2]) -> Snapshot {
    let mut t = xvs_core::service::ServiceTable::new(16, 64);
    let key = svc(Protocol::Tcp, VIP_RR, 80);
    t.add_service(
        key,
        xvs_core::service::ServiceOptions {
            scheduler: "mh".into(),
            ..Default::default()
        },
    )
    .unwrap();
    for rs in order {
        let o = RealOptions {
            method: xvs_core::service::Method::Dr,
            weight: 1,
            ..RealOptions::default()
        };
        t.add_real(&key, ip(rs), None, o).unwrap();
    }
    snapshot_of(t, 1)
}

#[test]
fn a_flow_met_mid_stream_goes_where_the_director_that_opened_it_sent_it_with_mh() {
    // Director A opened the flows; director B, whose servers came in the other order, meets
    // them mid-stream (a route change, before any sync).
    let (a, b) = (mh_snapshot([RS1, RS2]), mh_snapshot([RS2, RS1]));
    let (mut fa, mut fb) = (forwarder(), forwarder());
    let mut seen = std::collections::HashSet::new();
    for p in 0..64u16 {
        // mh hashes the client's address: one client per flow.
        let client = format!("203.0.113.{}", p + 1);
        let syn = from_client(&tcp(&client, 41000, VIP_RR, 80).syn());
        let (v, opened) = run(&mut fa, &a, EXT, &syn, 1);
        assert_eq!(v, Verdict::Tx { port: INT });
        let ack = from_client(&tcp(&client, 41000, VIP_RR, 80).ack());
        let (v, moved) = run(&mut fb, &b, EXT, &ack, 2);
        assert_eq!(v, Verdict::Tx { port: INT }, "mid-stream segment scheduled");
        assert_eq!(&moved[..6], &opened[..6], "{client}: the same real server");
        seen.insert(opened[..6].to_vec());
    }
    assert_eq!(seen.len(), 2, "both servers used");
    assert_eq!(fb.stats().global().conns_created, 64);
    // With another scheduler the segment finds no connection: dropped and counted.
    let rr = snapshot();
    let ack = from_client(&tcp(CLIENT, 42000, VIP_RR, 80).ack());
    let (v, _) = run(&mut fb, &rr, EXT, &ack, 3);
    assert_eq!(v, Verdict::Drop(DropReason::NoConnection));
}
