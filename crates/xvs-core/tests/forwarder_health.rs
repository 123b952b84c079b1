//! Health in the forwarder: a server that is down gets no new connections (its connections
//! continue unless expire_nodest_conn), the sorry server takes over when none is up, persistence
//! does not stick to a server that went down, and a withdrawn service matches nothing.

use xvs_core::service::{Method, Protocol, RealOptions, ServiceTable};
use xvs_core::{Options, Snapshot, Verdict};
use xvs_testkit::lab::*;
use xvs_testkit::pkt::*;

fn syn_from(sport: u16, vip: &str) -> Vec<u8> {
    from_client(&tcp(CLIENT, sport, vip, 80).syn())
}

fn dst_mac(out: &[u8]) -> [u8; 6] {
    out[..6].try_into().unwrap()
}

fn with(f: impl FnOnce(&mut ServiceTable), generation: u64) -> Snapshot {
    let mut t = services();
    f(&mut t);
    snapshot_of(t, generation)
}

fn real_id(t: &ServiceTable, vip: &str, rs: &str) -> u32 {
    let svc = t.find(&svc(Protocol::Tcp, vip, 80)).unwrap();
    t.find_real(svc, &ip(rs), 80).unwrap().id
}

#[test]
fn a_down_server_gets_no_new_connections() {
    let mut fw = forwarder();
    let snap = with(
        |t| {
            let rs2 = real_id(t, VIP_RR, RS2);
            assert!(t.set_up(rs2, false));
            assert!(!t.set_up(rs2, false), "no change the second time");
        },
        2,
    );
    for sport in 0..6 {
        let (v, out) = run(&mut fw, &snap, EXT, &syn_from(41000 + sport, VIP_RR), 1);
        assert!(matches!(v, Verdict::Tx { .. }));
        assert_eq!(dst_mac(&out), RS1_MAC.0, "rr skips the server that is down");
    }
}

#[test]
fn existing_connections_continue_or_expire_as_configured() {
    let mut fw = forwarder();
    let snap = snapshot();
    let (_, out) = run(&mut fw, &snap, EXT, &syn_from(42000, VIP_DR), 1);
    assert_eq!(dst_mac(&out), RS1_MAC.0);
    let down = with(
        |t| {
            let id = real_id(t, VIP_DR, RS1);
            t.set_up(id, false);
        },
        2,
    );
    let ack = from_client(&tcp(CLIENT, 42000, VIP_DR, 80).ack());
    let (v, out) = run(&mut fw, &down, EXT, &ack, 2);
    assert!(matches!(v, Verdict::Tx { .. }), "the connection continues");
    assert_eq!(dst_mac(&out), RS1_MAC.0);
    let mut expire = down.clone();
    expire.options = Options {
        expire_nodest_conn: true,
        ..Options::default()
    };
    expire.generation = 3;
    let (v, _) = run(&mut fw, &expire, EXT, &ack, 3);
    assert_eq!(
        v,
        Verdict::Drop(xvs_core::DropReason::NoConnection),
        "expire_nodest_conn: the entry goes, the stray ACK meets no connection"
    );
}

#[test]
fn the_sorry_server_takes_over_when_none_is_up() {
    let mut fw = forwarder();
    let sorry_opts = RealOptions {
        method: Method::Dr,
        weight: 1,
        u_threshold: 0,
        l_threshold: 0,
        tunnel: Default::default(),
    };
    let snap = with(
        |t| {
            let key = svc(Protocol::Tcp, VIP_RR, 80);
            assert!(
                t.set_sorry(&key, Some((ip(RS1), Some(8080), sorry_opts)))
                    .unwrap()
            );
            assert!(
                !t.set_sorry(&key, Some((ip(RS1), Some(8080), sorry_opts)))
                    .unwrap(),
                "the same sorry server again changes nothing"
            );
            for rs in [RS1, RS2] {
                let id = real_id(t, VIP_RR, rs);
                t.set_up(id, false);
            }
        },
        2,
    );
    let (v, out) = run(&mut fw, &snap, EXT, &syn_from(43000, VIP_RR), 1);
    assert!(matches!(v, Verdict::Tx { .. }), "{v:?}");
    assert_eq!(
        dst_mac(&out),
        RS1_MAC.0,
        "the sorry server (RS1:8080) answers"
    );
    let sorry = snap
        .services
        .find(&svc(Protocol::Tcp, VIP_RR, 80))
        .unwrap()
        .sorry
        .unwrap();
    assert_eq!(
        fw.stats().real_totals(sorry).conns,
        1,
        "counted on the sorry server"
    );
    // One server back: it takes the new connections again.
    let back = with(
        |t| {
            let key = svc(Protocol::Tcp, VIP_RR, 80);
            t.set_sorry(&key, Some((ip(RS1), Some(8080), sorry_opts)))
                .unwrap();
            let id = real_id(t, VIP_RR, RS2);
            t.set_up(id, false);
        },
        3,
    );
    let (_, out) = run(&mut fw, &back, EXT, &syn_from(43001, VIP_RR), 2);
    assert_eq!(dst_mac(&out), RS1_MAC.0);
}

#[test]
fn persistence_does_not_stick_to_a_server_that_went_down() {
    let mut fw = forwarder();
    let snap = snapshot();
    let (_, first) = run(&mut fw, &snap, EXT, &syn_from(44000, VIP_PERSIST), 1);
    let (rs, other_mac) = if dst_mac(&first) == RS1_MAC.0 {
        (RS1, RS2_MAC)
    } else {
        (RS2, RS1_MAC)
    };
    let down = with(
        |t| {
            let svc = t.find(&svc(Protocol::Tcp, VIP_PERSIST, 80)).unwrap();
            let id = t.find_real(svc, &ip(rs), 80).unwrap().id;
            t.set_up(id, false);
        },
        2,
    );
    let (_, out) = run(&mut fw, &down, EXT, &syn_from(44001, VIP_PERSIST), 2);
    assert_eq!(dst_mac(&out), other_mac.0);
}

#[test]
fn a_withdrawn_service_matches_nothing() {
    let mut fw = forwarder();
    let snap = with(
        |t| {
            assert!(t.set_down(&svc(Protocol::Tcp, VIP_DR, 80), true));
        },
        2,
    );
    let (v, _) = run(&mut fw, &snap, EXT, &syn_from(45000, VIP_DR), 1);
    assert_eq!(v, Verdict::Pass);
}
