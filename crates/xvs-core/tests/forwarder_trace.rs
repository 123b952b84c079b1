//! `Forwarder::trace`: the answers match what the forwarder then does, and tracing creates
//! nothing.

use std::sync::Arc;
use xvs_core::conn::FlowKey;
use xvs_core::service::addr16;
use xvs_core::{Forwarder, Time, Trace, Verdict};
use xvs_testkit::lab::*;
use xvs_testkit::pkt::*;
use xvs_wire::ip_proto;
use xvs_wire::tcp::flags;

fn key(src: &str, sport: u16, dst: &str, dport: u16) -> FlowKey {
    FlowKey::flow(
        4,
        ip_proto::TCP,
        addr16(&ip(src)),
        sport,
        addr16(&ip(dst)),
        dport,
    )
}

/// A second forwarder on the same table and counters (the control thread's).
fn control_of(fw: &Forwarder) -> Forwarder {
    Forwarder::new(Arc::clone(fw.table()), Arc::clone(fw.stats()), 1, 7)
}

fn real_of(t: &Trace) -> u32 {
    match t {
        Trace::Scheduled { real, .. }
        | Trace::Connection { real, .. }
        | Trace::Persistent { real, .. }
        | Trace::Reply { real, .. } => *real,
        other => panic!("no real server in {other:?}"),
    }
}

#[test]
fn new_then_existing_connection() {
    let snap = snapshot();
    let mut fw = forwarder();
    let mut ctl = control_of(&fw);
    let k = key(CLIENT, 40000, VIP_DR, 80);
    let t = ctl.trace(&snap, k, flags::SYN, Time::from_millis(1000));
    assert!(matches!(t, Trace::Scheduled { .. }), "{t:?}");
    assert_eq!(fw.table().len(), 0, "a trace creates no connection");
    let syn = from_client(&tcp(CLIENT, 40000, VIP_DR, 80).syn());
    let (v, out) = run(&mut fw, &snap, EXT, &syn, 1);
    assert!(matches!(v, Verdict::Tx { .. }));
    assert_eq!(out[..6], RS1_MAC.0, "sent to RS1");
    let t2 = ctl.trace(&snap, k, flags::ACK, Time::from_millis(2000));
    match t2 {
        Trace::Connection {
            state,
            real_removed,
            ..
        } => {
            assert_eq!(state, "SYN_RECV");
            assert!(!real_removed);
        }
        other => panic!("expected the connection, got {other:?}"),
    }
    let dr = snap
        .services
        .find(&svc(xvs_core::service::Protocol::Tcp, VIP_DR, 80))
        .unwrap();
    let rs1 = snap.services.find_real(dr, &ip(RS1), 80).unwrap().id;
    assert_eq!(
        real_of(&t),
        rs1,
        "the trace names the server the SYN went to"
    );
    assert_eq!(real_of(&t2), rs1, "and then the connection's");
}

#[test]
fn not_a_service_and_not_opening() {
    let snap = snapshot();
    let mut ctl = forwarder();
    assert_eq!(
        ctl.trace(
            &snap,
            key(CLIENT, 1, DIR_EXT, 22),
            flags::SYN,
            Time::from_millis(0)
        ),
        Trace::NoService
    );
    assert!(matches!(
        ctl.trace(
            &snap,
            key(CLIENT, 1, VIP_DR, 80),
            flags::ACK,
            Time::from_millis(0)
        ),
        Trace::NotOpening { .. }
    ));
}

#[test]
fn nat_reply_direction() {
    let snap = snapshot();
    let mut fw = forwarder();
    let mut ctl = control_of(&fw);
    let syn = from_client(&tcp(CLIENT, 40001, VIP_NAT, 80).syn());
    run(&mut fw, &snap, EXT, &syn, 1);
    let t = ctl.trace(
        &snap,
        key(RS1, 8080, CLIENT, 40001),
        flags::SYN | flags::ACK,
        Time::from_millis(1000),
    );
    assert!(matches!(t, Trace::Reply { .. }), "{t:?}");
}

#[test]
fn persistence_template_decides() {
    let snap = snapshot();
    let mut fw = forwarder();
    let mut ctl = control_of(&fw);
    let syn = from_client(&tcp(CLIENT, 40002, VIP_PERSIST, 80).syn());
    let (_, out) = run(&mut fw, &snap, EXT, &syn, 1);
    let t = ctl.trace(
        &snap,
        key(CLIENT, 50000, VIP_PERSIST, 80),
        flags::SYN,
        Time::from_millis(1000),
    );
    let Trace::Persistent {
        real, expires_in, ..
    } = t
    else {
        panic!("expected the template, got {t:?}");
    };
    assert_eq!(expires_in, 300);
    let r = snap.services.real(real).unwrap();
    let mac = if r.addr == ip(RS1) { RS1_MAC } else { RS2_MAC };
    assert_eq!(
        &out[..6],
        &mac.0,
        "the template's server is the one the SYN went to"
    );
}

#[test]
fn no_real_server() {
    let snap = snapshot();
    let mut ctl = forwarder();
    assert!(matches!(
        ctl.trace(
            &snap,
            key(CLIENT, 1, VIP_QUIESCED, 80),
            flags::SYN,
            Time::from_millis(0)
        ),
        Trace::NoRealServer { .. }
    ));
}

#[test]
fn sctp_traces_say_what_the_forwarder_does() {
    let snap = snapshot();
    let mut fw = forwarder();
    let mut ctl = control_of(&fw);
    let k = FlowKey::flow(
        4,
        ip_proto::SCTP,
        addr16(&ip(CLIENT)),
        5000,
        addr16(&ip(VIP_SCTP)),
        3868,
    );
    // A chunk other than INIT opens nothing: the host's, as `process` decides for DATA.
    let t = ctl.trace(&snap, k, flags::ACK, Time::from_millis(1000));
    assert!(matches!(t, Trace::NotOpening { .. }), "{t:?}");
    // INIT (`syn` in a trace) is scheduled, and the forwarder sends it there.
    let t = ctl.trace(&snap, k, flags::SYN, Time::from_millis(1000));
    let real = real_of(&t);
    assert!(matches!(t, Trace::Scheduled { .. }), "{t:?}");
    let init = from_client(&sctp_init(CLIENT, 5000, VIP_SCTP, 3868));
    let (v, _) = run(&mut fw, &snap, EXT, &init, 1);
    assert!(matches!(v, Verdict::Tx { .. }), "{v:?}");
    let t = ctl.trace(&snap, k, flags::ACK, Time::from_millis(1500));
    assert!(matches!(t, Trace::Connection { .. }), "{t:?}");
    assert_eq!(real_of(&t), real);
}
