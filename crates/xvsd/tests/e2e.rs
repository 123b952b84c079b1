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
    for svc in x.list()["services"].as_array().unwrap() {
        for r in svc["reals"].as_array().unwrap() {
            assert_eq!(r["stats"]["conns"], 2, "{svc}");
            assert_eq!(
                r["stats"]["out_pkts"], 0,
                "DR replies bypass the director: {svc}"
            );
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
    let out: u64 = x.list()["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["stats"]["out_pkts"].as_u64().unwrap())
        .sum();
    assert!(out > 0, "NAT replies crossed the director: {s}");
    assert_eq!(s["drops"]["no_connection"], 0, "{s}");
    x.assert_frames_balanced();
}

/// Reads a pcap file written by tcpdump: the frames.
fn pcap_frames(bytes: &[u8]) -> Vec<Vec<u8>> {
    assert!(bytes.len() >= 24, "not a pcap file ({} bytes)", bytes.len());
    let le = bytes[..4] == [0xd4, 0xc3, 0xb2, 0xa1];
    let u32_at = |b: &[u8], i: usize| {
        let a = [b[i], b[i + 1], b[i + 2], b[i + 3]];
        if le {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        }
    };
    let mut out = Vec::new();
    let mut i = 24;
    while i + 16 <= bytes.len() {
        let len = u32_at(bytes, i + 8) as usize;
        i += 16;
        if i + len > bytes.len() {
            break;
        }
        out.push(bytes[i..i + len].to_vec());
        i += len;
    }
    out
}

const TUN: &str = r#"
interfaces: [ext0]
poll_mode: adaptive
services:
  - { proto: tcp, vip: 198.18.0.10, port: 80, scheduler: rr, reals: [ { addr: 198.18.0.11, method: tun } ] }
"#;

/// TUN: what leaves for the real server is the client's packet, untouched, inside an outer
/// IPv4 header (protocol 4) from the director to the real server with a valid checksum and the
/// inner TTL and DF. Checked by capture on the real server: this kernel has no ipip module.
#[test]
fn tun_frames_carry_the_untouched_packet() {
    let _g = serial();
    let lab = Lab::up("one-armed", 1);
    let x = lab.xvsd(TUN, &[]);
    // The SYN goes out encapsulated; nothing answers (no decapsulation here), so curl gives up.
    let frames = capture(&lab, "rs1", "ip proto 4", || {
        let _ = lab.run(
            "cl",
            &["curl", "-s", "--max-time", "2", "http://198.18.0.10/"],
        );
    });
    assert!(
        !frames.is_empty(),
        "no IPIP frame reached the real server\n{}",
        x.log_text()
    );
    for f in &frames {
        let outer = etherparse::Ipv4HeaderSlice::from_slice(&f[14..]).expect("outer IPv4");
        assert_eq!(
            outer.protocol(),
            etherparse::IpNumber::IPV4,
            "outer protocol"
        );
        assert_eq!(
            outer.source(),
            [198, 18, 0, 2],
            "outer source: the director"
        );
        assert_eq!(
            outer.destination(),
            [198, 18, 0, 11],
            "outer destination: the real server"
        );
        let h = outer.to_header();
        assert_eq!(
            h.header_checksum,
            h.calc_header_checksum(),
            "outer checksum"
        );
        let inner = etherparse::SlicedPacket::from_ip(&f[14 + outer.slice().len()..])
            .expect("inner packet");
        let Some(etherparse::NetSlice::Ipv4(ip)) = inner.net else {
            panic!("inner IPv4")
        };
        assert_eq!(
            ip.header().destination(),
            [198, 18, 0, 10],
            "inner destination: the VIP"
        );
        assert_eq!(
            ip.header().source(),
            [198, 18, 0, 100],
            "inner source: the client"
        );
        assert_eq!(
            (h.time_to_live, h.dont_fragment),
            (ip.header().ttl(), ip.header().dont_fragment()),
            "TTL and DF copied"
        );
        let ih = ip.header().to_header();
        assert_eq!(
            ih.header_checksum,
            ih.calc_header_checksum(),
            "inner header untouched"
        );
        let Some(etherparse::TransportSlice::Tcp(t)) = inner.transport else {
            panic!("inner TCP")
        };
        assert!(t.syn() && t.destination_port() == 80);
        assert_eq!(
            t.checksum(),
            t.to_header().calc_checksum_ipv4(&ih, t.payload()).unwrap(),
            "inner TCP checksum"
        );
    }
    x.assert_frames_balanced();
}

const TUN_TYPES: &str = r#"
interfaces: [ext0]
poll_mode: adaptive
services:
  - { proto: tcp, vip: 198.18.0.10, port: 80, scheduler: rr, reals: [ { addr: 198.18.0.11, method: tun, tunnel: { type: gue, port: 6080, csum: csum } } ] }
  - { proto: tcp, vip: 198.18.0.10, port: 8080, scheduler: rr, reals: [ { addr: 198.18.0.12, method: tun, tunnel: { type: gre, csum: csum } } ] }
"#;

/// Captures on `node`'s eth0 with `filter` while `traffic` runs; the frames.
fn capture(lab: &Lab, node: &str, filter: &str, traffic: impl FnOnce()) -> Vec<Vec<u8>> {
    let pcap = format!("/tmp/{}{node}.pcap", lab.prefix);
    let mut dump = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            &lab.ns(node),
            "timeout",
            "8",
            "tcpdump",
            "-U",
            "-n",
        ])
        .args(["-i", "eth0", "-w", &pcap, filter])
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("tcpdump");
    std::thread::sleep(std::time::Duration::from_millis(800));
    traffic();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let _ = std::process::Command::new("kill")
        .args(["-INT", &dump.id().to_string()])
        .status();
    let _ = dump.wait();
    let frames = pcap_frames(&std::fs::read(&pcap).expect("capture file"));
    let _ = std::fs::remove_file(&pcap);
    frames
}

/// The one's complement sum of `b` folded: 0xffff when a checksum inside it verifies (GRE's;
/// written here rather than taken from xvs-wire, whose output it checks).
fn ones_sum(b: &[u8]) -> u16 {
    let mut s: u32 = b
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

/// What follows the outer IPv4 header of a tunnelled frame, after checking that header: from
/// the director to `rip`, protocol `proto`, a valid checksum.
fn tunnel_payload(f: &[u8], proto: etherparse::IpNumber, rip: [u8; 4]) -> &[u8] {
    let outer = etherparse::Ipv4HeaderSlice::from_slice(&f[14..]).expect("outer IPv4");
    assert_eq!(outer.protocol(), proto, "outer protocol");
    assert_eq!(
        (outer.source(), outer.destination()),
        ([198, 18, 0, 2], rip)
    );
    let h = outer.to_header();
    assert_eq!(
        h.header_checksum,
        h.calc_header_checksum(),
        "outer checksum"
    );
    &f[14 + outer.slice().len()..]
}

/// The client's SYN to `port`, as the inner packet of `payload` (after the tunnel header).
fn inner_syn(payload: &[u8], port: u16) {
    let inner = etherparse::SlicedPacket::from_ip(payload).expect("inner packet");
    let Some(etherparse::NetSlice::Ipv4(ip)) = inner.net else {
        panic!("inner IPv4")
    };
    assert_eq!(ip.header().source(), [198, 18, 0, 100], "the client");
    assert_eq!(ip.header().destination(), [198, 18, 0, 10], "the VIP");
    let Some(etherparse::TransportSlice::Tcp(t)) = inner.transport else {
        panic!("inner TCP")
    };
    assert!(t.syn() && t.destination_port() == port);
}

/// `--tun-type gue` and `gre`: checked by capture on the real servers (this kernel has neither
/// fou nor ip_gre): GUE is UDP from the director to the real server's port with a valid UDP
/// checksum, a GUE header naming IPv4, the client's packet; GRE is protocol 47 with the C bit,
/// a valid GRE checksum, EtherType IPv4, the client's packet.
#[test]
fn gue_and_gre_tunnels_carry_the_packet_as_the_kernel_s_do() {
    let _g = serial();
    let lab = Lab::up("one-armed", 1);
    let x = lab.xvsd(TUN_TYPES, &[]);
    let curl = |port: u16| {
        let url = format!("http://198.18.0.10:{port}/");
        let _ = lab.run("cl", &["curl", "-s", "--max-time", "2", &url]);
    };
    let gue = capture(&lab, "rs1", "udp dst port 6080", || curl(80));
    assert!(
        !gue.is_empty(),
        "no GUE frame reached rs1\n{}",
        x.log_text()
    );
    for f in &gue {
        let udp = tunnel_payload(f, etherparse::IpNumber::UDP, [198, 18, 0, 11]);
        assert_eq!(u16::from_be_bytes([udp[2], udp[3]]), 6080, "the GUE port");
        assert!(
            u16::from_be_bytes([udp[0], udp[1]]) >= 32768,
            "an ephemeral source port"
        );
        assert_eq!(usize::from(u16::from_be_bytes([udp[4], udp[5]])), udp.len());
        // The UDP checksum is right (computed by etherparse, not by xvs's own code).
        let h = etherparse::UdpHeaderSlice::from_slice(udp)
            .expect("UDP header")
            .to_header();
        let want = h
            .calc_checksum_ipv4_raw([198, 18, 0, 2], [198, 18, 0, 11], &udp[8..])
            .expect("fits");
        assert_ne!(&udp[6..8], &[0, 0], "a checksum (--tun-csum)");
        assert_eq!(h.checksum, want, "the UDP checksum verifies");
        assert_eq!(
            &udp[8..12],
            &[0, 4, 0, 0],
            "GUE version 0, proto IPIP, no flags"
        );
        inner_syn(&udp[12..], 80);
    }
    let gre = capture(&lab, "rs2", "ip proto 47", || curl(8080));
    assert!(
        !gre.is_empty(),
        "no GRE frame reached rs2\n{}",
        x.log_text()
    );
    for f in &gre {
        let g = tunnel_payload(f, etherparse::IpNumber(47), [198, 18, 0, 12]);
        assert_eq!(
            &g[..4],
            &[0x80, 0, 0x08, 0x00],
            "C bit, version 0, EtherType IPv4"
        );
        assert_eq!(ones_sum(g), 0xffff, "the GRE checksum verifies");
        inner_syn(&g[8..], 8080);
    }
    x.assert_frames_balanced();
}

const FULLNAT: &str = r#"
interfaces: [ext0, int0]
poll_mode: adaptive
services:
  - { proto: tcp, vip: 198.18.0.10, port: 7, scheduler: rr, local_addrs: [198.18.1.100],
      reals: [ { addr: 198.18.1.11, method: fullnat }, { addr: 198.18.1.12, method: fullnat } ] }
"#;

/// FullNAT: the real servers have no route to the client at all; they see the director's local
/// address as the source and the connection still works, byte for byte.
#[test]
fn fullnat_real_servers_need_no_route_to_clients() {
    let _g = serial();
    let lab = Lab::up("two-armed", 1);
    for rs in ["rs1", "rs2"] {
        assert!(
            lab.run(rs, &["ip", "route", "del", "default"])
                .status
                .success()
        );
        let r = lab.run(rs, &["ip", "route", "get", "198.18.0.100"]);
        assert!(!r.status.success(), "{rs} still has a route to the client");
    }
    let x = lab.xvsd(FULLNAT, &[]);
    let sources = format!("/tmp/{}fnat.txt", lab.prefix);
    let dump = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            &lab.ns("rs1"),
            "timeout",
            "6",
            "tcpdump",
            "-l",
            "-n",
            "-i",
            "eth0",
            "-c",
            "3",
            "tcp dst port 7",
        ])
        .stdout(std::fs::File::create(&sources).expect("file"))
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("tcpdump");
    std::thread::sleep(std::time::Duration::from_millis(800));
    for k in 0..4 {
        let data = payload(30_000, k);
        assert!(
            lab.tcp_echo("198.18.0.10", 7, &data) == data,
            "connection {k}\n{}",
            x.log_text()
        );
    }
    let out = dump.wait_with_output().expect("tcpdump");
    drop(out);
    let seen = std::fs::read_to_string(&sources).unwrap_or_default();
    let _ = std::fs::remove_file(&sources);
    assert!(
        seen.contains("198.18.1.100."),
        "rs1 should see the local address as source:\n{seen}"
    );
    assert!(
        !seen.contains("198.18.0.100"),
        "rs1 must not see the client's address:\n{seen}"
    );
    x.assert_frames_balanced();
}

const SCHED: &str = r#"
interfaces: [ext0, int0]
poll_mode: adaptive
services:
  - { proto: tcp, vip: 198.18.0.10, port: 80, scheduler: wrr, reals: [
      { addr: 198.18.1.11, method: nat, weight: 3 }, { addr: 198.18.1.12, method: nat, weight: 2 }, { addr: 198.18.1.13, method: nat, weight: 1 } ] }
  - { proto: tcp, vip: 198.18.0.10, port: 81, scheduler: rr, reals: [
      { addr: 198.18.1.11, port: 80, method: nat }, { addr: 198.18.1.12, port: 80, method: nat }, { addr: 198.18.1.13, port: 80, method: nat } ] }
  - { proto: tcp, vip: 198.18.0.10, port: 82, scheduler: sh, reals: [
      { addr: 198.18.1.11, port: 80, method: nat }, { addr: 198.18.1.12, port: 80, method: nat }, { addr: 198.18.1.13, port: 80, method: nat } ] }
  - { proto: tcp, vip: 198.18.0.10, port: 83, scheduler: rr, persistence: { timeout: 60 }, reals: [
      { addr: 198.18.1.11, port: 80, method: nat }, { addr: 198.18.1.12, port: 80, method: nat }, { addr: 198.18.1.13, port: 80, method: nat } ] }
"#;

fn share(counts: &std::collections::HashMap<String, usize>, rs: &str, n: usize) -> f64 {
    counts.get(rs).copied().unwrap_or(0) as f64 / n as f64
}

/// Schedulers seen from a real client over new connections: wrr 3:2:1 over 600 connections
/// within ±5%, rr evenly, sh keeps one client on one server, persistence (-p) keeps a client on
/// one server across connections.
#[test]
fn schedulers_over_real_connections() {
    let _g = serial();
    let lab = Lab::up("two-armed", 1);
    let x = lab.xvsd(SCHED, &[]);
    let n = 600;
    let (wrr, errors) = lab.http_counts("198.18.0.10", 80, n);
    assert_eq!(errors, 0, "{wrr:?}\n{}", x.log_text());
    for (rs, want) in [("rs1", 3.0 / 6.0), ("rs2", 2.0 / 6.0), ("rs3", 1.0 / 6.0)] {
        let got = share(&wrr, rs, n);
        assert!(
            (got - want).abs() <= 0.05,
            "wrr {rs}: {got:.3} of connections, want {want:.3} ±0.05: {wrr:?}"
        );
    }
    let (rr, errors) = lab.http_counts("198.18.0.10", 81, 300);
    assert_eq!(errors, 0);
    for rs in ["rs1", "rs2", "rs3"] {
        assert!(
            (share(&rr, rs, 300) - 1.0 / 3.0).abs() <= 0.05,
            "rr {rs}: {rr:?}"
        );
    }
    let (sh, errors) = lab.http_counts("198.18.0.10", 82, 50);
    assert_eq!(
        (sh.len(), errors),
        (1, 0),
        "sh keeps one client on one server: {sh:?}"
    );
    let (p, errors) = lab.http_counts("198.18.0.10", 83, 50);
    assert_eq!(
        (p.len(), errors),
        (1, 0),
        "persistence keeps one client on one server: {p:?}"
    );
    x.assert_frames_balanced();
}

/// Two queues, two workers: connections spread over both, and NAT replies that arrive on the
/// other queue than their request (so at the other worker) still translate, byte for byte.
#[test]
fn two_workers_nat_replies_on_the_other_queue() {
    let _g = serial();
    let lab = Lab::up("two-armed", 2);
    let x = lab.xvsd(NAT, &["--queues", "2"]);
    for k in 0..60u32 {
        let data = payload(2000 + k as usize * 13, k);
        assert!(
            lab.tcp_echo("198.18.0.10", 7, &data) == data,
            "connection {k}\n{}",
            x.log_text()
        );
    }
    let s = x.stats();
    let workers = s["workers"].as_array().unwrap();
    assert_eq!(workers.len(), 2);
    for (i, w) in workers.iter().enumerate() {
        assert!(
            w["rx"].as_u64().unwrap() > 0,
            "worker {i} received nothing: {s}"
        );
    }
    assert!(
        s["cross_worker_replies"].as_u64().unwrap() > 0,
        "no reply crossed workers in 60 connections: {s}"
    );
    x.assert_frames_balanced();
}

/// While xvsd runs, the director's own traffic is untouched (ping to its address, a TCP
/// connection to a port on it); after it stops (SIGTERM, exit 0) no XDP program is left.
#[test]
fn host_traffic_untouched_and_nothing_left_after_exit() {
    let _g = serial();
    let lab = Lab::up("two-armed", 1);
    let mut x = lab.xvsd(NAT, &[]);
    let ping = lab.run(
        "cl",
        &["ping", "-c", "3", "-i", "0.2", "-W", "2", "198.18.0.2"],
    );
    assert!(
        ping.status.success(),
        "ping to the director: {}",
        String::from_utf8_lossy(&ping.stdout)
    );
    let ping6 = lab.run(
        "cl",
        &[
            "ping",
            "-6",
            "-c",
            "2",
            "-i",
            "0.2",
            "-W",
            "2",
            "2001:db8::2",
        ],
    );
    assert!(
        ping6.status.success(),
        "ping6 to the director: {}",
        String::from_utf8_lossy(&ping6.stdout)
    );
    let server = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            &lab.ns("dir"),
            "timeout",
            "10",
            "socat",
            "TCP4-LISTEN:2222,reuseaddr",
            "EXEC:cat",
        ])
        .spawn()
        .expect("socat on the director");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let data = payload(10_000, 9);
    assert!(
        lab.tcp_echo("198.18.0.2", 2222, &data) == data,
        "TCP to a port on the director"
    );
    drop(server);
    // Health-check-like traffic from the director to a NAT real server (its replies come from
    // a real server's service port but to the director itself: the host keeps them).
    let hc = lab.run(
        "dir",
        &["curl", "-s", "--max-time", "3", "http://198.18.1.11:7/"],
    );
    assert!(
        hc.status.code() != Some(7) && hc.status.code() != Some(28),
        "director → real server blocked: {hc:?}"
    );
    let st = x.stop();
    assert!(st.success(), "xvsd exit status {st}\n{}", x.log_text());
    let links = lab.run("dir", &["ip", "-d", "link", "show"]);
    let text = String::from_utf8_lossy(&links.stdout);
    assert!(
        !text.contains("prog/xdp"),
        "an XDP program was left attached:\n{text}"
    );
}

/// Garbage and truncated frames sent at the director's interface are dropped and counted by
/// reason; xvsd keeps running and serving.
#[test]
fn garbage_on_the_wire_is_counted_and_survived() {
    let _g = serial();
    let lab = Lab::up("two-armed", 1);
    let x = lab.xvsd(NAT, &[]);
    let director_mac = String::from_utf8_lossy(
        &lab.run("dir", &["cat", "/sys/class/net/ext0/address"])
            .stdout,
    )
    .trim()
    .to_string();
    // Raw frames from the client: IPv4 to the VIP:7 that xvs must look at, each broken a
    // different way, plus random bytes after a valid Ethernet header.
    let script = r#"
import socket, struct, sys, random
mac = bytes.fromhex(sys.argv[1].replace(":", ""))
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("eth0", 0))
src = open("/sys/class/net/eth0/address").read().strip()
eth = mac + bytes.fromhex(src.replace(":", "")) + b"\x08\x00"
def ip(total, proto=6, csum=None, ihl=5):
    h = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, total, 1, 0x4000, 64, proto, 0, bytes([198,18,0,100]), bytes([198,18,0,10]))
    if csum is None:
        s_ = sum(struct.unpack("!10H", h)); s_ = (s_ & 0xffff) + (s_ >> 16); s_ = (s_ & 0xffff) + (s_ >> 16)
        csum = ~s_ & 0xffff
    return h[:10] + struct.pack("!H", csum) + h[12:]
ports = struct.pack("!HH", 40000, 7)
frames = [
    eth + ip(60) + ports,                       # TCP header cut short (IP says 60 bytes)
    eth + ip(40, csum=0x1234) + ports + struct.pack("!IIBBHHH", 1, 0, 0x50, 0x02, 1000, 0, 0),  # SYN, bad IP checksum
    eth + ip(40) + ports + struct.pack("!IIBBHHH", 1, 0, 0x20, 0x02, 1000, 0, 0),  # TCP data offset 8
]
random.seed(7)
for _ in range(20):
    frames.append(eth + ip(28 + 20) + ports + bytes(random.getrandbits(8) for _ in range(4)))
for f in frames:
    s.send(f.ljust(60, b"\0"))
print(len(frames))
"#;
    let out = lab.run("cl", &["python3", "-c", script, &director_mac]);
    assert!(
        out.status.success(),
        "raw sender: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(
        x.drops("truncated") >= 1,
        "truncated not counted: {}",
        x.stats()
    );
    assert!(
        x.drops("bad_checksum") >= 1,
        "bad checksum not counted: {}",
        x.stats()
    );
    assert!(
        x.drops("malformed") >= 1 || x.drops("truncated") >= 2,
        "bad data offset not counted: {}",
        x.stats()
    );
    // Still alive and serving.
    let data = payload(5000, 3);
    assert!(
        lab.tcp_echo("198.18.0.10", 7, &data) == data,
        "xvsd stopped serving\n{}",
        x.log_text()
    );
    x.assert_frames_balanced();
}

/// Start-up errors name the cause and the fix; nothing is left attached.
#[test]
fn startup_errors_are_clear() {
    let _g = serial();
    let lab = Lab::up("two-armed", 1);
    let missing = lab.run(
        "dir",
        &[
            env!("CARGO_BIN_EXE_xvsd"),
            "--interface",
            "nosuch0",
            "--control-socket",
            "/tmp/xe-none.sock",
        ],
    );
    assert_eq!(missing.status.code(), Some(1));
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(err.contains("interface nosuch0 does not exist"), "{err}");
    let none = lab.run("dir", &[env!("CARGO_BIN_EXE_xvsd")]);
    assert_eq!(none.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&none.stderr).contains("--interface"),
        "{}",
        String::from_utf8_lossy(&none.stderr)
    );
    // A second daemon on an interface that already has an XDP program.
    let first = lab.xvsd(NAT, &[]);
    let second = lab.run(
        "dir",
        &[
            env!("CARGO_BIN_EXE_xvsd"),
            "--interface",
            "ext0",
            "--control-socket",
            "/tmp/xe-second.sock",
        ],
    );
    assert_eq!(second.status.code(), Some(1));
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(err.contains("another XDP program is attached"), "{err}");
    // The first one is unaffected.
    let data = payload(3000, 1);
    assert!(
        lab.tcp_echo("198.18.0.10", 7, &data) == data,
        "{}",
        first.log_text()
    );
    let bad = lab.run(
        "dir",
        &[env!("CARGO_BIN_EXE_xvsd"), "--check-config", "/dev/null"],
    );
    assert_eq!(
        bad.status.code(),
        Some(0),
        "an empty file is a valid (empty) configuration"
    );
}

/// `--manage-vips`: xvsd adds the VIP as an address of its first interface (so the host answers
/// ARP for it), serves it, and removes it at exit.
#[test]
fn manage_vips_adds_and_removes_the_vip() {
    let _g = serial();
    let lab = Lab::up("two-armed", 1);
    assert!(
        lab.run(
            "dir",
            &["ip", "addr", "del", "198.18.0.10/32", "dev", "ext0"]
        )
        .status
        .success()
    );
    let _ = lab.run("cl", &["ip", "neigh", "flush", "all"]);
    let has_vip = |lab: &Lab| {
        String::from_utf8_lossy(
            &lab.run("dir", &["ip", "-4", "addr", "show", "dev", "ext0"])
                .stdout,
        )
        .contains("198.18.0.10/32")
    };
    assert!(!has_vip(&lab));
    let mut x = lab.xvsd(NAT, &["--manage-vips"]);
    assert!(has_vip(&lab), "xvsd did not add the VIP\n{}", x.log_text());
    let data = payload(4000, 5);
    assert!(
        lab.tcp_echo("198.18.0.10", 7, &data) == data,
        "{}",
        x.log_text()
    );
    assert!(x.stop().success());
    assert!(!has_vip(&lab), "xvsd left the VIP behind");
}
