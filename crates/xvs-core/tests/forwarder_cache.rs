//! The worker's flow cache in front of the shared table: what it serves, when it gives the
//! decision back to the shared entry, and that what it sends is what the shared path sends.

use std::sync::Arc;
use xvs_core::conn::EntryKind;
use xvs_core::{Forwarder, Snapshot, Verdict};
use xvs_testkit::lab::*;
use xvs_testkit::pkt::*;

/// A segment that meets no connection.
const NO_CONN: Verdict = Verdict::Drop(xvs_core::DropReason::NoConnection);

/// Opens a DR connection at second `t` and makes it steady (data from the client verifies
/// it, one more ACK): cached from then on within second `t`.
fn established(fw: &mut Forwarder, snap: &Snapshot, port: u16, t: u64) {
    for p in session(CLIENT, port, VIP_DR, 80) {
        let (v, _) = run(fw, snap, EXT, &from_client(&p), t);
        assert!(matches!(v, Verdict::Tx { .. }), "{v:?}");
    }
}

fn ack(port: u16) -> Vec<u8> {
    from_client(&tcp(CLIENT, port, VIP_DR, 80).ack())
}

/// Empties the shared table behind the forwarder's back.
fn forget_shared(fw: &Forwarder) {
    fw.table().retain(|_| false);
}

#[test]
fn a_handshake_alone_is_not_cached_and_keeps_the_short_timeout() {
    let snap = snapshot();
    let mut fw = forwarder();
    for p in [
        tcp(CLIENT, 41009, VIP_DR, 80).syn(),
        tcp(CLIENT, 41009, VIP_DR, 80).ack(),
        tcp(CLIENT, 41009, VIP_DR, 80).ack(),
    ] {
        run(&mut fw, &snap, EXT, &from_client(&p), 10);
    }
    let mut entry = None;
    fw.table().for_each(|e| entry = Some((e.state, e.expires)));
    assert_eq!(
        entry,
        Some((xvs_core::conn::state::tcp::ESTABLISHED, 10 + 60)),
        "established, with SYN_RECV's 60 s until it shows data"
    );
    forget_shared(&fw);
    let (v, _) = run(&mut fw, &snap, EXT, &ack(41009), 10);
    assert_eq!(v, NO_CONN, "not served from the cache");
}

#[test]
fn a_steady_flow_is_served_without_its_shared_entry_within_the_second() {
    let snap = snapshot();
    let mut fw = forwarder();
    established(&mut fw, &snap, 41000, 10);
    forget_shared(&fw);
    let (v, out) = run(&mut fw, &snap, EXT, &ack(41000), 10);
    assert!(matches!(v, Verdict::Tx { port: INT }), "cached: {v:?}");
    assert_eq!(out[..6], RS1_MAC.0[..], "to the same real server");
    // The next second visits the shared table again: the connection is gone, and a bare ACK
    // opens nothing.
    let (v, _) = run(&mut fw, &snap, EXT, &ack(41000), 11);
    assert_eq!(v, NO_CONN);
}

#[test]
fn the_shared_entry_is_refreshed_once_a_second() {
    let snap = snapshot();
    let mut fw = forwarder();
    established(&mut fw, &snap, 41001, 10);
    let expires = |fw: &Forwarder| {
        let mut e = None;
        fw.table().for_each(|x| {
            if x.kind == EntryKind::Forward {
                e = Some(x.expires);
            }
        });
        e.unwrap()
    };
    assert_eq!(expires(&fw), 10 + 900);
    run(&mut fw, &snap, EXT, &ack(41001), 500);
    assert_eq!(
        expires(&fw),
        500 + 900,
        "the first packet of a second refreshes"
    );
    run(&mut fw, &snap, EXT, &ack(41001), 500);
    assert_eq!(expires(&fw), 500 + 900);
}

#[test]
fn a_fin_takes_the_shared_path_and_the_flow_leaves_the_cache() {
    let snap = snapshot();
    let mut fw = forwarder();
    established(&mut fw, &snap, 41002, 10);
    let fin = from_client(&tcp(CLIENT, 41002, VIP_DR, 80).fin().ack());
    let (v, _) = run(&mut fw, &snap, EXT, &fin, 10);
    assert!(matches!(v, Verdict::Tx { .. }));
    let mut state = None;
    fw.table().for_each(|x| state = Some(x.state));
    assert_eq!(state, Some(xvs_core::conn::state::tcp::FIN_WAIT));
    // Later packets of the closing connection see its shared entry, not the cached decision.
    forget_shared(&fw);
    let (v, _) = run(&mut fw, &snap, EXT, &ack(41002), 10);
    assert_eq!(v, NO_CONN, "not served from the cache after the FIN");
}

#[test]
fn a_new_snapshot_empties_the_cache() {
    let snap = snapshot();
    let mut fw = forwarder();
    established(&mut fw, &snap, 41003, 10);
    forget_shared(&fw);
    let next = snapshot_of(services(), 2);
    let (v, _) = run(&mut fw, &next, EXT, &ack(41003), 10);
    assert_eq!(v, NO_CONN);
}

#[test]
fn cached_sends_equal_shared_sends_for_every_method() {
    for (vip, port) in [
        (VIP_DR, 42000),
        (VIP_NAT, 42001),
        (VIP_TUN, 42002),
        (VIP_FNAT, 42003),
    ] {
        let snap = snapshot();
        let mut fw = forwarder();
        let opens = [
            tcp(CLIENT, port, vip, 80).syn(),
            tcp(CLIENT, port, vip, 80).ack(),
        ];
        for p in &opens {
            run(&mut fw, &snap, EXT, &from_client(p), 20);
        }
        let data = from_client(&tcp(CLIENT, port, vip, 80).ack().payload(b"abc"));
        // The first is decided by the shared entry and fills the cache; the second is the
        // cache's; a third a second later is the shared entry's again.
        let shared = run(&mut fw, &snap, EXT, &data, 20);
        let cached = run(&mut fw, &snap, EXT, &data, 20);
        let again = run(&mut fw, &snap, EXT, &data, 21);
        assert!(
            matches!(shared.0, Verdict::Tx { .. }),
            "{vip}: {:?}",
            shared.0
        );
        assert_eq!(cached, shared, "{vip}: cached and shared decisions differ");
        assert_eq!(again, shared, "{vip}");
    }
}

#[test]
fn udp_is_cached_from_its_second_packet() {
    let snap = snapshot();
    let mut fw = forwarder();
    let dg = from_client(&udp(CLIENT, 43000, VIP_NAT, 53, b"q"));
    let first = run(&mut fw, &snap, EXT, &dg, 30);
    let second = run(&mut fw, &snap, EXT, &dg, 30);
    assert!(
        matches!(first.0, Verdict::Tx { port: INT }),
        "{:?}",
        first.0
    );
    assert_eq!(first, second);
    forget_shared(&fw);
    let third = run(&mut fw, &snap, EXT, &dg, 30);
    assert_eq!(third, second, "the second packet made it steady: cached");
}

#[test]
fn two_workers_keep_their_own_caches_over_one_table() {
    let snap = snapshot();
    let a = forwarder();
    let mut b = Forwarder::new(Arc::clone(a.table()), Arc::clone(a.stats()), 0, 9);
    let mut a = a;
    established(&mut a, &snap, 41004, 10);
    // Worker b never saw the flow: it must find it in the shared table.
    let (v, _) = run(&mut b, &snap, EXT, &ack(41004), 10);
    assert!(matches!(v, Verdict::Tx { port: INT }));
    forget_shared(&a);
    // a still has it cached this second; b filled its own cache with the visit above.
    assert!(matches!(
        run(&mut a, &snap, EXT, &ack(41004), 10).0,
        Verdict::Tx { .. }
    ));
    assert!(matches!(
        run(&mut b, &snap, EXT, &ack(41004), 10).0,
        Verdict::Tx { .. }
    ));
    assert_eq!(run(&mut b, &snap, EXT, &ack(41004), 11).0, NO_CONN);
}
