//! The steering program against its userspace twin: the real program (loaded, attached
//! nowhere) runs on each frame through `BPF_PROG_TEST_RUN`, and the frame's fate is compared
//! with what the steering rules say once the forwarder's own parser (xvs-wire) has read the
//! frame. A frame the forwarder would serve that the program leaves to the host is the bug of
//! IPv6 extension headers found in the hardening issue; a frame for nobody that the program
//! steers costs a worker for nothing.
//!
//! The program's queue-0 gate is set to "behind", so a frame it would steer comes back as
//! `XDP_DROP` (counted as behind) and one it leaves to the host as `XDP_PASS`; the SYN budget
//! is off. Needs root (or CAP_BPF and CAP_PERFMON), as xvsd does.

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};
use xvs_io::steering::{Steering, SteeringSets, SvcKey};
use xvs_io::xdp_loader::SocketMap;
use xvs_wire::ip_proto;
use xvs_wire::summary::{FragKind, Summary, summarize, v4_mapped};

const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;

fn v4(a: [u8; 4]) -> [u8; 16] {
    v4_mapped(a)
}

fn v6(last: u8) -> [u8; 16] {
    let mut a = [0u8; 16];
    a[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
    a[15] = last;
    a
}

fn key(addr: [u8; 16], port: u16, proto: u8) -> SvcKey {
    SvcKey {
        addr,
        port,
        proto,
        pad: 0,
    }
}

/// The lab's steering sets: services on 198.18.0.10 (TCP 80, UDP 53, SCTP 9, ICMP) and
/// [2001:db8::10] (TCP 80, ICMPv6), a port-0 TCP service on 198.18.0.20, a NAT real server
/// 198.18.1.11:8080 and a mark-service real server [2001:db8::11] (port 0), a FullNAT local
/// address 198.18.1.100, and the director's own 198.18.0.2.
pub fn sets() -> SteeringSets {
    let vip4 = v4([198, 18, 0, 10]);
    let vip6 = v6(0x10);
    SteeringSets {
        vips: HashSet::from([
            key(vip4, 80, ip_proto::TCP),
            key(vip4, 53, ip_proto::UDP),
            key(vip4, 9, ip_proto::SCTP),
            key(vip4, 0, ip_proto::ICMP),
            key(vip6, 80, ip_proto::TCP),
            key(vip6, 0, ip_proto::ICMPV6),
            key(v4([198, 18, 0, 20]), 0, ip_proto::TCP),
        ]),
        rips: HashSet::from([
            key(v4([198, 18, 1, 11]), 8080, ip_proto::TCP),
            key(v4([198, 18, 1, 11]), 0, ip_proto::ICMP),
            key(v6(0x11), 0, ip_proto::TCP),
        ]),
        laddrs: HashSet::from([v4([198, 18, 1, 100])]),
        locals: HashSet::from([v4([198, 18, 0, 2])]),
    }
}

fn program() -> &'static Mutex<Steering> {
    static P: OnceLock<Mutex<Steering>> = OnceLock::new();
    P.get_or_init(|| {
        let mut s = Steering::unattached().unwrap_or_else(|e| {
            panic!("the steering fuzz target loads the XDP program: run it as root ({e})")
        });
        s.sync(&sets()).expect("steering maps");
        s.gate(0).expect("queue 0's gate").set_behind(true);
        Mutex::new(s)
    })
}

/// ICMP types the program hands to xvs (echo requests and errors; never neighbour
/// discovery).
fn icmp_steered(proto: u8, ty: u8) -> bool {
    match proto {
        ip_proto::ICMP => matches!(ty, 3 | 4 | 5 | 8 | 11 | 12),
        _ => ty <= 128,
    }
}

/// What the steering rules say of `frame`, read by the forwarder's parser: `Some(true)` if it
/// must reach xvs, `Some(false)` if it must be left to the host, `None` where the parser
/// refuses it or it is a fragment (the forwarder drops those itself, counted).
pub fn expected(frame: &[u8], sets: &SteeringSets) -> Option<bool> {
    let s = match summarize(frame) {
        Ok(Summary::NotIp { .. }) => return Some(false),
        Ok(Summary::Ip(s)) => s,
        Err(_) => return None,
    };
    if s.frag != FragKind::Whole || s.vlan_count > 2 {
        return None;
    }
    let (src, dst, proto) = (s.key.src(), s.key.dst(), s.key.proto());
    let icmp = matches!(proto, ip_proto::ICMP | ip_proto::ICMPV6);
    let icmp_type = if icmp { *frame.get(s.l4_offset)? } else { 0 };
    let (sport, dport) = if s.has_ports() {
        (s.key.sport(), s.key.dport())
    } else {
        (0, 0)
    };
    let has = |set: &HashSet<SvcKey>, a, p| set.contains(&key(a, p, proto));
    // 1. Virtual services.
    if icmp {
        if icmp_steered(proto, icmp_type) && has(&sets.vips, dst, 0) {
            return Some(true);
        }
    } else if has(&sets.vips, dst, dport) || has(&sets.vips, dst, 0) {
        return Some(true);
    }
    // 2. FullNAT local addresses.
    if sets.laddrs.contains(&dst) && (!icmp || icmp_steered(proto, icmp_type)) {
        return Some(true);
    }
    // 3. Replies of NAT real servers, unless to the director itself.
    if sets.locals.contains(&dst) {
        return Some(false);
    }
    if icmp {
        return Some(
            icmp_type < 128 && icmp_type != 0 && icmp_type != 8 && has(&sets.rips, src, 0),
        );
    }
    Some(has(&sets.rips, src, sport) || has(&sets.rips, src, 0))
}

/// One frame through the program: its action is PASS or DROP (never aborted, never another),
/// and where the parser decides, the program agrees.
pub fn steer(frame: &[u8]) {
    // The kernel runs XDP test frames of a whole Ethernet header up to about a page (and no
    // driver hands the program anything shorter).
    if !(14..=3000).contains(&frame.len()) {
        return;
    }
    let p = program().lock().unwrap_or_else(|e| e.into_inner());
    let action = p.test_run(frame).expect("BPF_PROG_TEST_RUN");
    assert!(
        action == XDP_PASS || action == XDP_DROP,
        "the program returned action {action}"
    );
    if let Some(want) = expected(frame, &sets()) {
        assert_eq!(
            action == XDP_DROP,
            want,
            "the program {} a frame the forwarder's parser says {}",
            if action == XDP_DROP {
                "steered"
            } else {
                "left to the host"
            },
            if want {
                "must be steered"
            } else {
                "is for the host"
            }
        );
    }
}
