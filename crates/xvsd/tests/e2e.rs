//! End-to-end tests in network namespaces: real clients (socat, python's http.client, curl)
//! talk through xvsd (AF_XDP, the XDP steering program, the forwarding core) to real servers.
//! They need root and the lab's tools; they fail, never skip, when those are missing. Every
//! lab is deleted afterwards, even on failure.

mod lab;

use lab::{Lab, payload, serial};

const DR: &str = r#"
interfaces: [ext0]
poll_mode: adaptive
services:
  - { proto: tcp, vip: 198.18.0.10, port: 7, scheduler: rr, reals: [ { addr: 198.18.0.11, method: dr }, { addr: 198.18.0.12, method: dr } ] }
  - { proto: tcp, vip: "2001:db8::10", port: 7, scheduler: rr, reals: [ { addr: "2001:db8::11", method: dr }, { addr: "2001:db8::12", method: dr } ] }
"#;

/// DR, one-armed: TCP through the VIP to real servers that hold the VIP on lo (arp_ignore=1,
/// arp_announce=2) and answer directly; every byte comes back as sent. IPv4 and IPv6.
#[test]
fn dr_one_armed_tcp_ipv4_and_ipv6() {
    let _g = serial();
    let lab = Lab::up("one-armed", 1);
    let x = lab.xvsd(DR, &[]);
    for (i, vip) in ["198.18.0.10", "2001:db8::10"].iter().enumerate() {
        for k in 0..4 {
            let data = payload(65536 + k * 1000, (i * 10 + k) as u32);
            let back = lab.tcp_echo(vip, 7, &data);
            assert!(
                back == data,
                "{vip}: {} bytes sent, {} came back, first difference at {:?}\n{}",
                data.len(),
                back.len(),
                back.iter().zip(&data).position(|(a, b)| a != b),
                x.log_text()
            );
        }
    }
    let s = x.stats();
    assert_eq!(s["conns_created"], 8, "{s}");
    // Both real servers served (rr), and only the client's half crossed the director.
    for svc in s["services"].as_array().unwrap() {
        for r in svc["reals"].as_array().unwrap() {
            assert_eq!(r["conns"], 2, "{svc}");
            assert_eq!(r["out_pkts"], 0, "DR replies bypass the director: {svc}");
        }
    }
    x.assert_frames_balanced();
}

const NAT: &str = r#"
interfaces: [ext0, int0]
poll_mode: adaptive
services:
  - { proto: tcp, vip: 198.18.0.10, port: 7, scheduler: rr, reals: [ { addr: 198.18.1.11, method: nat }, { addr: 198.18.1.12, method: nat } ] }
  - { proto: udp, vip: 198.18.0.10, port: 7, scheduler: rr, reals: [ { addr: 198.18.1.11, method: nat }, { addr: 198.18.1.12, method: nat } ] }
  - { proto: tcp, vip: "2001:db8::10", port: 7, scheduler: rr, reals: [ { addr: "2001:db8:1::11", method: nat }, { addr: "2001:db8:1::12", method: nat } ] }
  - { proto: tcp, vip: 198.18.0.10, port: 80, scheduler: rr, reals: [ { addr: 198.18.1.11, port: 8080, method: nat } ] }
"#;

/// NAT, two-armed: the real servers' default route is the director; TCP (IPv4 and IPv6) is
/// byte-compared, a UDP request gets its response, and port mapping (80 → 8080) works.
#[test]
fn nat_two_armed_tcp_udp_ipv6() {
    let _g = serial();
    let lab = Lab::up("two-armed", 1);
    let x = lab.xvsd(NAT, &[]);
    for (i, vip) in ["198.18.0.10", "2001:db8::10"].iter().enumerate() {
        for k in 0..3 {
            let data = payload(50_000 + k * 777, (i * 10 + k) as u32);
            let back = lab.tcp_echo(vip, 7, &data);
            assert!(
                back == data,
                "{vip}: {} bytes sent, {} back\n{}",
                data.len(),
                back.len(),
                x.log_text()
            );
        }
    }
    for k in 0..4u32 {
        let q = format!("query {k}");
        assert_eq!(
            lab.udp_echo("198.18.0.10", 7, q.as_bytes()),
            q.as_bytes(),
            "UDP {k}"
        );
    }
    let (counts, errors) = lab.http_counts("198.18.0.10", 80, 5);
    assert_eq!(
        (counts.get("rs1").copied(), errors),
        (Some(5), 0),
        "port-mapped HTTP: {counts:?}"
    );
    let s = x.stats();
    let out: u64 = s["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["out_pkts"].as_u64().unwrap())
        .sum();
    assert!(out > 0, "NAT replies crossed the director: {s}");
    assert_eq!(s["drops"]["no_connection"], 0, "{s}");
    x.assert_frames_balanced();
}
