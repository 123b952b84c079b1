//! The state machine against keepalived's behaviour, one scenario each.

use super::check::Received;
use super::instance::{Action, Instance, Params, SEC, State};
use std::net::IpAddr;
use xvs_wire::vrrp::{Advert, GROUP_V4};

fn params(prio: u8) -> Params {
    Params {
        name: "VI_1".into(),
        vrid: 51,
        version: 2,
        priority: prio,
        adver_int: SEC,
        password: None,
        vips: vec!["198.18.0.10".parse().unwrap()],
        unicast_peers: Vec::new(),
        nopreempt: false,
        preempt_delay: 0,
        garp_master_delay: 5 * SEC,
        garp_master_repeat: 5,
        garp_master_refresh: 0,
        garp_master_refresh_repeat: 1,
        garp_lower_prio_repeat: 5,
        garp_lower_prio_delay: 5 * SEC,
    }
}

/// An advert from `src` with `prio`, as a peer sends it.
fn advert(prio: u8, src: [u8; 4]) -> Vec<u8> {
    let vip = [198u8, 18, 0, 10];
    let mut b = [0u8; 64];
    let n = Advert {
        version: 2,
        vrid: 51,
        priority: prio,
        interval_cs: 100,
        auth_type: 0,
        password: b"",
        addrs: &[&vip],
    }
    .emit(&mut b, &src, &GROUP_V4)
    .unwrap();
    b[..n].to_vec()
}

fn hear(i: &mut Instance, now: u64, prio: u8, src: [u8; 4]) -> Vec<Action> {
    let p = advert(prio, src);
    i.on_packet(
        now,
        &Received {
            src: IpAddr::from(src),
            dst: IpAddr::from(GROUP_V4),
            ttl: 255,
            packet: &p,
        },
    )
}

fn entered(out: &[Action]) -> Option<State> {
    out.iter().find_map(|a| match a {
        Action::Enter { to, .. } => Some(*to),
        _ => None,
    })
}

fn adverts(out: &[Action]) -> Vec<u8> {
    out.iter()
        .filter_map(|a| match a {
            Action::Advert { priority } => Some(*priority),
            _ => None,
        })
        .collect()
}

#[test]
fn a_backup_takes_over_after_three_intervals_and_the_skew() {
    let mut i = Instance::new(params(100));
    assert_eq!(entered(&i.start(0)), Some(State::Backup));
    // v2 skew at priority 100: (256 − 100) / 256 s.
    assert_eq!(i.skew(), 156 * SEC / 256);
    let down = 3 * SEC + 156 * SEC / 256;
    assert!(i.tick(down - 1).is_empty());
    let out = i.tick(down);
    assert_eq!(entered(&out), Some(State::Master));
    // The advert goes first, then the gratuitous ARPs (garp_master_repeat).
    assert_eq!(out[1], Action::Advert { priority: 100 });
    assert_eq!(out[2], Action::Garp { rounds: 5 });
    // Adverts every interval; the second set of ARPs after garp_master_delay.
    assert_eq!(adverts(&i.tick(down + SEC)), [100]);
    assert!(i.tick(down + 5 * SEC).contains(&Action::Garp { rounds: 5 }));
}

#[test]
fn a_backup_that_hears_its_master_stays_backup() {
    let mut i = Instance::new(params(100));
    i.start(0);
    for k in 1..10 {
        assert!(hear(&mut i, k * SEC, 150, [198, 18, 0, 3]).is_empty());
        assert!(i.tick(k * SEC + SEC / 2).is_empty());
    }
    assert_eq!(i.state, State::Backup);
    assert_eq!(i.master, Some(("198.18.0.3".parse().unwrap(), 150)));
    assert_eq!(i.counters.adverts_in, 9);
}

#[test]
fn a_master_yields_to_a_higher_priority_without_a_priority_zero_advert() {
    let mut i = Instance::new(params(255));
    i.start(0);
    assert_eq!(
        entered(&i.tick(0)),
        Some(State::Master),
        "the owner at once"
    );
    let mut i = Instance::new(params(100));
    i.start(0);
    i.tick(10 * SEC);
    assert_eq!(i.state, State::Master);
    let out = hear(&mut i, 11 * SEC, 150, [198, 18, 0, 3]);
    assert_eq!(entered(&out), Some(State::Backup));
    assert!(adverts(&out).is_empty());
}

#[test]
fn two_masters_of_equal_priority_leave_the_higher_address_master() {
    let mut i = Instance::new(params(100));
    i.own_addr = Some("198.18.0.2".parse().unwrap());
    i.start(0);
    i.tick(10 * SEC);
    // Equal priority, lower address: we stay and re-advertise (split-brain recovery).
    let out = hear(&mut i, 11 * SEC, 100, [198, 18, 0, 1]);
    assert_eq!(i.state, State::Master);
    assert_eq!(adverts(&out), [100]);
    assert!(out.contains(&Action::Garp { rounds: 5 }));
    // Equal priority, higher address: we yield.
    let out = hear(&mut i, 12 * SEC, 100, [198, 18, 0, 3]);
    assert_eq!(entered(&out), Some(State::Backup));
    // A backup never preempts on an address tie.
    let out = hear(&mut i, 13 * SEC, 100, [198, 18, 0, 1]);
    assert!(out.is_empty());
    assert_eq!(i.state, State::Backup);
}

#[test]
fn priority_zero_makes_a_backup_take_over_after_the_skew_only() {
    let mut i = Instance::new(params(100));
    i.start(0);
    hear(&mut i, SEC, 150, [198, 18, 0, 3]);
    hear(&mut i, 2 * SEC, 0, [198, 18, 0, 3]);
    assert!(i.tick(2 * SEC + i.skew() - 1).is_empty());
    assert_eq!(entered(&i.tick(2 * SEC + i.skew())), Some(State::Master));
}

#[test]
fn stop_and_fault_send_keepalived_s_priority_zero_adverts() {
    let mut i = Instance::new(params(100));
    i.start(0);
    i.tick(10 * SEC);
    let out = i.stop(11 * SEC);
    assert_eq!(adverts(&out), [0], "one on a clean stop");
    assert_eq!(entered(&out), Some(State::Stop));
    let mut i = Instance::new(params(100));
    i.start(0);
    i.tick(10 * SEC);
    let out = i.track_fault(11 * SEC, true);
    assert_eq!(adverts(&out), [0, 0], "two when a master goes to FAULT");
    assert_eq!(entered(&out), Some(State::Fault));
    assert!(
        hear(&mut i, 12 * SEC, 150, [198, 18, 0, 3]).is_empty(),
        "FAULT hears nothing"
    );
    let out = i.track_fault(13 * SEC, false);
    assert_eq!(entered(&out), Some(State::Backup));
}

#[test]
fn nopreempt_and_preempt_delay() {
    // nopreempt: a higher-priority backup accepts a lower-priority master.
    let mut p = params(150);
    p.nopreempt = true;
    let mut i = Instance::new(p);
    i.start(0);
    for k in 1..10 {
        hear(&mut i, k * SEC, 100, [198, 18, 0, 3]);
        assert!(i.tick(k * SEC + SEC / 2).is_empty());
    }
    assert_eq!(i.state, State::Backup);
    // preempt_delay 4 s: accepted for 4 s after the first lower-priority advert, then not.
    let mut p = params(150);
    p.preempt_delay = 4 * SEC;
    let mut i = Instance::new(p);
    i.start(0);
    let mut took_over = None;
    for k in 1..12 {
        hear(&mut i, k * SEC, 100, [198, 18, 0, 3]);
        if entered(&i.tick(k * SEC + SEC / 2)) == Some(State::Master) {
            took_over = Some(k);
            break;
        }
    }
    // Accepted until 5 s (4 s after the first, at 1 s): the last accepted at 4 s, then the
    // down timer (3 s + 106/256 s) runs out at 7.41 s.
    assert_eq!(took_over, Some(7));
    // Without either: a lower-priority master is ignored and the backup takes over once the
    // down timer runs out.
    let mut i = Instance::new(params(150));
    i.start(0);
    hear(&mut i, SEC, 100, [198, 18, 0, 3]);
    assert_eq!(entered(&i.tick(i.master_down() + 1)), Some(State::Master));
}

#[test]
fn tracking_moves_the_priority_within_1_to_254() {
    let mut i = Instance::new(params(100));
    i.start(0);
    i.set_priority_delta(0, -150);
    assert_eq!(i.effective, 1);
    i.set_priority_delta(0, 200);
    assert_eq!(i.effective, 254);
    let mut owner = Instance::new(params(255));
    owner.set_priority_delta(0, -50);
    assert_eq!(owner.effective, 255, "an owner's priority never moves");
}

#[test]
fn bad_adverts_are_counted_by_reason_and_change_nothing() {
    let mut i = Instance::new(params(100));
    i.start(0);
    let mut p = advert(150, [198, 18, 0, 3]);
    p[6] ^= 0xff;
    let out = i.on_packet(
        SEC,
        &Received {
            src: "198.18.0.3".parse().unwrap(),
            dst: "224.0.0.18".parse().unwrap(),
            ttl: 255,
            packet: &p,
        },
    );
    assert!(out.is_empty());
    assert_eq!(i.counters.adverts_in, 0);
    assert_eq!(i.counters.rejected.get(&super::Reject::Checksum), Some(&1));
    // The master-down timer was not restarted by it.
    assert_eq!(entered(&i.tick(i.master_down())), Some(State::Master));
}
