//! The forwarder's specification, as a table of cases over the reference lab (see
//! `xvs_testkit::lab` for the topology and the services).
//!
//! Each case: what it shows, when (the forwarder's clock, in seconds), the frame in (and the
//! port it arrives on), and what must come out: the verdict and, for transmitted frames, the
//! exact bytes. Expected frames are built with etherparse, independently of xvs's wire code,
//! so every checksum xvs updates incrementally is checked against a from-scratch computation.
//!
//! Every case is a test of its own, named by its number and what it shows (`cargo test -p
//! xvs-core --test forwarder_fixtures -- 07_`): it runs on a fresh forwarder after the cases
//! before it in the table, which are its set-up (a reply needs the connection its request
//! created; an expiry needs the connection to have been there). Their verdicts are not
//! checked there: each is checked by its own test.

use libtest_mimic::{Arguments, Failed, Trial};
use xvs_core::{DropReason, PortId, Verdict};
use xvs_testkit::lab::*;
use xvs_testkit::pkt::*;

/// Offsets in an untagged Ethernet frame carrying IPv4.
mod off {
    /// The IPv4 header.
    pub const IP: usize = 14;
    /// Version and header length.
    pub const VERSION_IHL: usize = IP;
    /// Total length (2 bytes).
    pub const TOTAL_LEN: usize = IP + 2;
    /// Flags and fragment offset (2 bytes).
    pub const FRAG: usize = IP + 6;
    /// Header checksum (2 bytes).
    pub const CHECKSUM: usize = IP + 10;
}

/// Writes a big-endian u16 at `at`.
fn set_u16(f: &mut [u8], at: usize, v: u16) {
    f[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

/// Fills the IPv4 header checksum in again after a change to the header.
fn fix_ip_checksum(f: &mut [u8]) {
    xvs_wire::ipv4::Ipv4Packet::new_unchecked(&mut f[off::IP..]).fill_checksum();
}

struct Case {
    what: &'static str,
    at: u64,
    ingress: PortId,
    input: Vec<u8>,
    expect: Expect,
}

enum Expect {
    Tx(PortId, Vec<u8>),
    Pass,
    Drop(DropReason),
    /// Kept unchanged until the next hop is resolved.
    Wait,
}

/// A case at second 1 (where the table starts).
fn case(what: &'static str, ingress: PortId, input: Vec<u8>, expect: Expect) -> Case {
    Case {
        what,
        at: 1,
        ingress,
        input,
        expect,
    }
}

impl Case {
    /// The same case at second `secs`.
    fn at(self, secs: u64) -> Case {
        Case { at: secs, ..self }
    }
}

/// A frame from a real server to the director's internal port.
fn from_rs(mac: xvs_wire::MacAddr, p: &impl IpPacket) -> Vec<u8> {
    eth(INT_MAC, mac, p)
}

/// A frame the director sends to a real server.
/// The UDP source port GUE uses for the TCP flow `client:cport → vip:vport`.
fn gue_sport(client: &str, cport: u16, vip: &str, vport: u16) -> u16 {
    let a = |s: &str| xvs_core::service::addr16(&ip(s));
    let key = xvs_wire::FlowKey::flow(4, 6, a(client), cport, a(vip), vport);
    xvs_wire::encap::gue_source_port(&key)
}

fn to_rs(mac: xvs_wire::MacAddr, p: &impl IpPacket) -> Expect {
    Expect::Tx(INT, eth(mac, INT_MAC, p))
}

/// A frame the director sends towards the client (via the router).
fn to_client(p: &impl IpPacket) -> Expect {
    Expect::Tx(EXT, eth(ROUTER_MAC, EXT_MAC, p))
}

fn big(n: usize) -> Vec<u8> {
    (0..n).map(|i| i as u8).collect()
}

fn table() -> Vec<Case> {
    let dr_syn = tcp(CLIENT, 40000, VIP_DR, 80).syn();
    let tun_big = tcp(CLIENT, 40002, VIP_TUN, 80).ack().payload(&big(1460));
    let tun6_big = tcp(CLIENT6, 40002, VIP6_TUN, 80).ack().payload(&big(1440));
    let gue_big = tcp(CLIENT, 40002, VIP_GUE, 80).ack().payload(&big(1460));
    let quiesced_syn = tcp(CLIENT, 42000, VIP_QUIESCED, 80).syn();
    let nat_ttl1 = tcp(CLIENT, 44000, VIP_NAT, 80).syn().ttl(1);
    let mut bad_csum = from_client(&tcp(CLIENT, 45000, VIP_DR, 80).syn());
    bad_csum[off::CHECKSUM] ^= 0xff;
    let mut bad_version = from_client(&dr_syn);
    bad_version[off::VERSION_IHL] = 0x55;
    let mut short_tcp = from_client(&tcp(CLIENT, 45001, VIP_DR, 80).syn());
    set_u16(&mut short_tcp, off::TOTAL_LEN, 30);
    fix_ip_checksum(&mut short_tcp);
    let mut fragment = from_client(&tcp(CLIENT, 45002, VIP_DR, 80).syn().no_df());
    set_u16(&mut fragment, off::FRAG, 0x2000); // MF, offset 0
    fix_ip_checksum(&mut fragment);
    let mut host_fragment = from_client(&tcp(CLIENT, 45003, DIR_EXT, 22).syn().no_df());
    set_u16(&mut host_fragment, off::FRAG, 0x0001); // offset 8
    fix_ip_checksum(&mut host_fragment);
    // A 24-byte header whose option (type 7, record route) claims length 0.
    let mut bad_option = from_client(&tcp(CLIENT, 46006, VIP_DR, 80).syn());
    bad_option.splice(off::IP + 20..off::IP + 20, [7u8, 0, 0, 0]);
    bad_option[off::VERSION_IHL] = 0x46;
    let total = u16::from_be_bytes([bad_option[off::TOTAL_LEN], bad_option[off::TOTAL_LEN + 1]]);
    set_u16(&mut bad_option, off::TOTAL_LEN, total + 4);
    fix_ip_checksum(&mut bad_option);
    let mut icmp_fragment = from_client(&icmp(
        CLIENT,
        VIP_DR,
        8,
        0,
        [0, 1, 0, 1],
        b"0123456789abcdef",
    ));
    set_u16(&mut icmp_fragment, off::FRAG, 0x0002); // offset 16
    icmp_fragment.truncate(off::IP + 20 + 4);
    set_u16(&mut icmp_fragment, off::TOTAL_LEN, 24);
    fix_ip_checksum(&mut icmp_fragment);

    vec![
        // ---- What is not for a virtual service goes to the host stack. ----
        case(
            "ARP is the host's business",
            EXT,
            arp_request(ROUTER_MAC, "198.18.0.1", DIR_EXT),
            Expect::Pass,
        ),
        case(
            "TCP to the director's own address (SSH) passes",
            EXT,
            from_client(&tcp(CLIENT, 50000, DIR_EXT, 22).syn()),
            Expect::Pass,
        ),
        // ---- DR: only the MACs change. ----
        case(
            "DR: a SYN to the VIP goes to RS1 with only the MACs rewritten",
            EXT,
            from_client(&dr_syn),
            to_rs(RS1_MAC, &dr_syn),
        ),
        case(
            "DR: the client's ACK follows the connection",
            EXT,
            from_client(&tcp(CLIENT, 40000, VIP_DR, 80).ack()),
            to_rs(RS1_MAC, &tcp(CLIENT, 40000, VIP_DR, 80).ack()),
        ),
        case(
            "DR: data follows the connection unchanged",
            EXT,
            from_client(
                &tcp(CLIENT, 40000, VIP_DR, 80)
                    .ack()
                    .payload(b"GET / HTTP/1.0\r\n\r\n"),
            ),
            to_rs(
                RS1_MAC,
                &tcp(CLIENT, 40000, VIP_DR, 80)
                    .ack()
                    .payload(b"GET / HTTP/1.0\r\n\r\n"),
            ),
        ),
        case(
            "DR: a VLAN-tagged frame keeps its tag",
            EXT,
            vlan(&from_client(&tcp(CLIENT, 40000, VIP_DR, 80).ack()), 100),
            Expect::Tx(
                INT,
                vlan(
                    &eth(RS1_MAC, INT_MAC, &tcp(CLIENT, 40000, VIP_DR, 80).ack()),
                    100,
                ),
            ),
        ),
        case(
            "DR: a stray ACK without a connection is dropped and counted",
            EXT,
            from_client(&tcp(CLIENT, 40099, VIP_DR, 80).ack()),
            Expect::Drop(DropReason::NoConnection),
        ),
        // ---- NAT: DNAT on the way in, SNAT on the way back, routed (TTL - 1). ----
        case(
            "NAT: a SYN is rewritten to RIP:rport with TTL decremented",
            EXT,
            from_client(&tcp(CLIENT, 40001, VIP_NAT, 80).syn()),
            to_rs(RS1_MAC, &tcp(CLIENT, 40001, RS1, 8080).syn().ttl(63)),
        ),
        case(
            "NAT: the SYN-ACK from RIP:rport goes back as VIP:vport",
            INT,
            from_rs(RS1_MAC, &tcp(RS1, 8080, CLIENT, 40001).syn().ack()),
            to_client(&tcp(VIP_NAT, 80, CLIENT, 40001).syn().ack().ttl(63)),
        ),
        case(
            "NAT: the client's ACK follows",
            EXT,
            from_client(&tcp(CLIENT, 40001, VIP_NAT, 80).ack()),
            to_rs(RS1_MAC, &tcp(CLIENT, 40001, RS1, 8080).ack().ttl(63)),
        ),
        case(
            "NAT: a UDP request is rewritten to the UDP service's real server",
            EXT,
            from_client(&udp(CLIENT, 5353, VIP_NAT, 53, b"query")),
            to_rs(RS2_MAC, &udp(CLIENT, 5353, RS2, 53, b"query").ttl(63)),
        ),
        case(
            "NAT: the UDP response returns from the VIP",
            INT,
            from_rs(RS2_MAC, &udp(RS2, 53, CLIENT, 5353, b"answer")),
            to_client(&udp(VIP_NAT, 53, CLIENT, 5353, b"answer").ttl(63)),
        ),
        case(
            "NAT: a packet whose TTL runs out gets 'time exceeded' from the VIP",
            EXT,
            from_client(&nat_ttl1),
            to_client(
                &icmp(VIP_NAT, CLIENT, 11, 0, [0; 4], &quote(&nat_ttl1, 40)).as_error_origin(),
            ),
        ),
        // ---- TUN: IPIP to the real server; too big with DF gets 'fragmentation needed'. ----
        case(
            "TUN: an outer IPv4 header DIP → RIP is prepended, TTL/DF/TOS/ID copied",
            EXT,
            from_client(&tcp(CLIENT, 40002, VIP_TUN, 80).syn()),
            to_rs(
                RS2_MAC,
                &ipip(DIR_INT, RS2, &tcp(CLIENT, 40002, VIP_TUN, 80).syn()),
            ),
        ),
        case(
            "TUN: a full-size DF packet no longer fits: ICMP fragmentation needed, MTU 1480",
            EXT,
            from_client(&tun_big),
            to_client(
                &icmp(
                    VIP_TUN,
                    CLIENT,
                    3,
                    4,
                    [0, 0, 0x05, 0xc8],
                    &quote(&tun_big, 548),
                )
                .as_error_origin(),
            ),
        ),
        // ---- FullNAT: both ends rewritten; the real server sees the local address. ----
        case(
            "FullNAT: CIP:cport → LADDR:1024 and VIP:vport → RIP:rport",
            EXT,
            from_client(&tcp(CLIENT, 40004, VIP_FNAT, 80).syn()),
            to_rs(RS1_MAC, &tcp(LADDR, 1024, RS1, 80).syn().ttl(63)),
        ),
        case(
            "FullNAT: the reply to LADDR:1024 is mapped back to VIP → CIP",
            INT,
            from_rs(RS1_MAC, &tcp(RS1, 80, LADDR, 1024).syn().ack()),
            to_client(&tcp(VIP_FNAT, 80, CLIENT, 40004).syn().ack().ttl(63)),
        ),
        // ---- IPv6. ----
        case(
            "IPv6 DR: only the MACs change",
            EXT,
            from_client(&tcp(CLIENT6, 40000, VIP6_DR, 80).syn()),
            to_rs(RS1_MAC, &tcp(CLIENT6, 40000, VIP6_DR, 80).syn()),
        ),
        case(
            "IPv6 NAT: rewritten to [RIP]:8080, hop limit decremented",
            EXT,
            from_client(&tcp(CLIENT6, 40001, VIP6_NAT, 80).syn()),
            to_rs(RS1_MAC, &tcp(CLIENT6, 40001, RS1_6, 8080).syn().ttl(63)),
        ),
        case(
            "IPv6 NAT: the reply returns from the VIP",
            INT,
            from_rs(RS1_MAC, &tcp(RS1_6, 8080, CLIENT6, 40001).syn().ack()),
            to_client(&tcp(VIP6_NAT, 80, CLIENT6, 40001).syn().ack().ttl(63)),
        ),
        case(
            "IPv6 TUN: IPv6-in-IPv6 from the director's internal address",
            EXT,
            from_client(&tcp(CLIENT6, 40002, VIP6_TUN, 80).syn()),
            to_rs(
                RS2_MAC,
                &ipip(DIR_INT6, RS2_6, &tcp(CLIENT6, 40002, VIP6_TUN, 80).syn()),
            ),
        ),
        case(
            "TUN GUE: outer IPv4, UDP to the GUE port with its checksum, GUE header, the packet",
            EXT,
            from_client(&tcp(CLIENT, 40002, VIP_GUE, 80).syn()),
            to_rs(
                RS2_MAC,
                &gue(
                    DIR_INT,
                    RS2,
                    gue_sport(CLIENT, 40002, VIP_GUE, 80),
                    GUE_PORT,
                    &tcp(CLIENT, 40002, VIP_GUE, 80).syn(),
                    true,
                ),
            ),
        ),
        case(
            "TUN GUE: 32 bytes of headers: a full-size DF packet gets fragmentation needed, MTU 1468",
            EXT,
            from_client(&gue_big),
            to_client(
                &icmp(
                    VIP_GUE,
                    CLIENT,
                    3,
                    4,
                    [0, 0, 0x05, 0xbc],
                    &quote(&gue_big, 548),
                )
                .as_error_origin(),
            ),
        ),
        case(
            "TUN GRE: outer IPv4 (protocol 47), GRE header for IPv4 without checksum, the packet",
            EXT,
            from_client(&tcp(CLIENT, 40003, VIP_GRE, 80).syn()),
            to_rs(
                RS2_MAC,
                &gre(DIR_INT, RS2, &tcp(CLIENT, 40003, VIP_GRE, 80).syn(), false),
            ),
        ),
        case(
            "IPv6 TUN GRE with its checksum: GRE header for IPv6, C bit, checksum",
            EXT,
            from_client(&tcp(CLIENT6, 40003, VIP6_GRE, 80).syn()),
            to_rs(
                RS2_MAC,
                &gre(
                    DIR_INT6,
                    RS2_6,
                    &tcp(CLIENT6, 40003, VIP6_GRE, 80).syn(),
                    true,
                ),
            ),
        ),
        case(
            "IPv6 TUN: too big: Packet Too Big with MTU 1460",
            EXT,
            from_client(&tun6_big),
            to_client(
                &icmp(
                    VIP6_TUN,
                    CLIENT6,
                    2,
                    0,
                    1460u32.to_be_bytes(),
                    &quote(&tun6_big, 1232),
                )
                .as_error_origin(),
            ),
        ),
        case(
            "IPv6 FullNAT: [CIP]:cport → [LADDR6]:1025, [VIP]:80 → [RIP]:80",
            EXT,
            from_client(&tcp(CLIENT6, 40004, VIP6_FNAT, 80).syn()),
            to_rs(RS1_MAC, &tcp(LADDR6, 1025, RS1_6, 80).syn().ttl(63)),
        ),
        case(
            "IPv6 FullNAT: the reply is mapped back",
            INT,
            from_rs(RS1_MAC, &tcp(RS1_6, 80, LADDR6, 1025).syn().ack()),
            to_client(&tcp(VIP6_FNAT, 80, CLIENT6, 40004).syn().ack().ttl(63)),
        ),
        // ---- SCTP: NAT rewrites the ports and recomputes the CRC32c. ----
        case(
            "SCTP NAT: an INIT is rewritten to RIP with a fresh CRC32c",
            EXT,
            from_client(&sctp_init(CLIENT, 5000, VIP_SCTP, 3868)),
            to_rs(RS1_MAC, &sctp_init(CLIENT, 5000, RS1, 3868).ttl(63)),
        ),
        case(
            "SCTP NAT: the INIT-ACK from RIP goes back from the VIP",
            INT,
            from_rs(RS1_MAC, &sctp_init_ack(RS1, 3868, CLIENT, 5000)),
            to_client(&sctp_init_ack(VIP_SCTP, 3868, CLIENT, 5000).ttl(63)),
        ),
        case(
            "SCTP NAT: DATA from the client follows its association",
            EXT,
            from_client(&sctp_data(CLIENT, 5000, VIP_SCTP, 3868, b"hello")),
            to_rs(
                RS1_MAC,
                &sctp_data(CLIENT, 5000, RS1, 3868, b"hello").ttl(63),
            ),
        ),
        case(
            "SCTP: DATA without an association is dropped (only INIT opens one)",
            EXT,
            from_client(&sctp_data(CLIENT, 5001, VIP_SCTP, 3868, b"x")),
            Expect::Drop(DropReason::NoConnection),
        ),
        // ---- ICMP. ----
        case(
            "ICMP echo to a VIP is answered (TTL reset to 64)",
            EXT,
            from_client(&icmp(CLIENT, VIP_DR, 8, 0, [0, 7, 0, 1], b"ping").ttl(50)),
            to_client(&icmp(VIP_DR, CLIENT, 0, 0, [0, 7, 0, 1], b"ping")),
        ),
        case(
            "ICMPv6 echo to a VIP is answered",
            EXT,
            from_client(&icmp(CLIENT6, VIP6_DR, 128, 0, [0, 7, 0, 1], b"ping6")),
            to_client(&icmp(VIP6_DR, CLIENT6, 129, 0, [0, 7, 0, 1], b"ping6")),
        ),
        case(
            "ICMP echo to the director itself is the host's",
            EXT,
            from_client(&icmp(CLIENT, DIR_EXT, 8, 0, [0, 7, 0, 1], b"ping")),
            Expect::Pass,
        ),
        case(
            "ICMP error about a NAT reply goes to the real server, quotation translated",
            EXT,
            from_client(&icmp(
                "198.18.0.1",
                VIP_NAT,
                3,
                4,
                [0, 0, 0x05, 0x00],
                &quote(&tcp(VIP_NAT, 80, CLIENT, 40001).ack().ttl(62), 28),
            )),
            to_rs(
                RS1_MAC,
                &icmp(
                    "198.18.0.1",
                    RS1,
                    3,
                    4,
                    [0, 0, 0x05, 0x00],
                    &quote(&tcp(RS1, 8080, CLIENT, 40001).ack().ttl(62), 28),
                )
                .ttl(63),
            ),
        ),
        case(
            "ICMP error from a NAT real server about the client's datagram returns as from the VIP",
            INT,
            from_rs(
                RS2_MAC,
                &icmp(
                    RS2,
                    CLIENT,
                    3,
                    3,
                    [0; 4],
                    &quote(&udp(CLIENT, 5353, RS2, 53, b"query").ttl(63), 36),
                ),
            ),
            to_client(
                &icmp(
                    VIP_NAT,
                    CLIENT,
                    3,
                    3,
                    [0; 4],
                    &quote(&udp(CLIENT, 5353, VIP_NAT, 53, b"query").ttl(63), 36),
                )
                .ttl(63),
            ),
        ),
        case(
            "ICMP error about a DR flow goes to its real server unchanged",
            EXT,
            from_client(&icmp(
                "198.18.0.1",
                VIP_DR,
                3,
                4,
                [0, 0, 0x05, 0x00],
                &quote(&tcp(VIP_DR, 80, CLIENT, 40000).ack(), 28),
            )),
            to_rs(
                RS1_MAC,
                &icmp(
                    "198.18.0.1",
                    VIP_DR,
                    3,
                    4,
                    [0, 0, 0x05, 0x00],
                    &quote(&tcp(VIP_DR, 80, CLIENT, 40000).ack(), 28),
                ),
            ),
        ),
        case(
            "ICMP error about an unknown flow is the host's",
            EXT,
            from_client(&icmp(
                "198.18.0.1",
                VIP_DR,
                3,
                4,
                [0, 0, 0x05, 0x00],
                &quote(&tcp(VIP_DR, 80, CLIENT, 1), 28),
            )),
            Expect::Pass,
        ),
        // ---- Scheduling, persistence, one-packet scheduling, quiesced servers. ----
        case(
            "rr: the first connection goes to RS1",
            EXT,
            from_client(&tcp(CLIENT, 41000, VIP_RR, 80).syn()),
            to_rs(RS1_MAC, &tcp(CLIENT, 41000, VIP_RR, 80).syn()),
        ),
        case(
            "rr: the next one, from the same client, goes to RS2",
            EXT,
            from_client(&tcp(CLIENT, 41001, VIP_RR, 80).syn()),
            to_rs(RS2_MAC, &tcp(CLIENT, 41001, VIP_RR, 80).syn()),
        ),
        case(
            "persistence: a client's first connection is scheduled (RS1)",
            EXT,
            from_client(&tcp(CLIENT, 41000, VIP_PERSIST, 80).syn()),
            to_rs(RS1_MAC, &tcp(CLIENT, 41000, VIP_PERSIST, 80).syn()),
        ),
        case(
            "persistence: its next connection sticks to RS1",
            EXT,
            from_client(&tcp(CLIENT, 41001, VIP_PERSIST, 80).syn()),
            to_rs(RS1_MAC, &tcp(CLIENT, 41001, VIP_PERSIST, 80).syn()),
        ),
        case(
            "persistence: another client is scheduled afresh (RS2)",
            EXT,
            from_client(&tcp("203.0.113.8", 41002, VIP_PERSIST, 80).syn()),
            to_rs(RS2_MAC, &tcp("203.0.113.8", 41002, VIP_PERSIST, 80).syn()),
        ),
        case(
            "one-packet UDP: the first datagram goes to RS1",
            EXT,
            from_client(&udp(CLIENT, 6000, VIP_OPS, 53, b"a")),
            to_rs(RS1_MAC, &udp(CLIENT, 6000, RS1, 53, b"a").ttl(63)),
        ),
        case(
            "one-packet UDP: the same flow's next datagram is scheduled again (RS2)",
            EXT,
            from_client(&udp(CLIENT, 6000, VIP_OPS, 53, b"b")),
            to_rs(RS2_MAC, &udp(CLIENT, 6000, RS2, 53, b"b").ttl(63)),
        ),
        case(
            "quiesced: no server with weight > 0: ICMP port unreachable from the VIP",
            EXT,
            from_client(&quiesced_syn),
            to_client(
                &icmp(
                    VIP_QUIESCED,
                    CLIENT,
                    3,
                    3,
                    [0; 4],
                    &quote(&quiesced_syn, 40),
                )
                .as_error_origin(),
            ),
        ),
        case(
            "unknown neighbour: the frame waits, unchanged (resolution requested)",
            EXT,
            from_client(&tcp(CLIENT, 43000, VIP_UNRESOLVED, 80).syn()),
            Expect::Wait,
        ),
        // ---- Malformed input: dropped and counted, never a panic. ----
        case(
            "a 10-byte frame is truncated",
            EXT,
            vec![0u8; 10],
            Expect::Drop(DropReason::Truncated),
        ),
        case(
            "IP version 5 is malformed",
            EXT,
            bad_version,
            Expect::Drop(DropReason::Malformed),
        ),
        case(
            "a SYN to a VIP with a bad IPv4 header checksum",
            EXT,
            bad_csum,
            Expect::Drop(DropReason::BadChecksum),
        ),
        case(
            "a TCP header cut short by the IP length",
            EXT,
            short_tcp,
            Expect::Drop(DropReason::Truncated),
        ),
        case(
            "a fragment for a virtual service (no reassembly)",
            EXT,
            fragment,
            Expect::Drop(DropReason::Fragment),
        ),
        case(
            "a fragment for the director itself passes",
            EXT,
            host_fragment,
            Expect::Pass,
        ),
        case(
            "a later ICMP fragment (no ICMP header) is the host's",
            EXT,
            icmp_fragment,
            Expect::Pass,
        ),
        // ---- Sources no client can have open nothing. ----
        case(
            "a SYN from 0.0.0.0 to a VIP is martian",
            EXT,
            from_client(&tcp("0.0.0.0", 46000, VIP_DR, 80).syn()),
            Expect::Drop(DropReason::Martian),
        ),
        case(
            "a SYN from a multicast address is martian",
            EXT,
            from_client(&tcp("224.0.0.1", 46001, VIP_NAT, 80).syn()),
            Expect::Drop(DropReason::Martian),
        ),
        case(
            "a SYN from the broadcast address is martian",
            EXT,
            from_client(&tcp("255.255.255.255", 46002, VIP_DR, 80).syn()),
            Expect::Drop(DropReason::Martian),
        ),
        case(
            "a SYN from the VIP itself is martian",
            EXT,
            from_client(&tcp(VIP_DR, 46003, VIP_DR, 80).syn()),
            Expect::Drop(DropReason::Martian),
        ),
        case(
            "an IPv6 SYN from ff02::1 is martian",
            EXT,
            from_client(&tcp("ff02::1", 46004, VIP6_DR, 80).syn()),
            Expect::Drop(DropReason::Martian),
        ),
        case(
            "an IPv6 SYN from :: is martian",
            EXT,
            from_client(&tcp("::", 46005, VIP6_DR, 80).syn()),
            Expect::Drop(DropReason::Martian),
        ),
        case(
            "an IPv4 option of length 0 is malformed",
            EXT,
            bad_option,
            Expect::Drop(DropReason::Malformed),
        ),
        // ---- Time: timeouts, expiry and persistence templates running out. ----
        case(
            "persistence: 199 s later the template still names RS2",
            EXT,
            from_client(&tcp("203.0.113.8", 41003, VIP_PERSIST, 80).syn()),
            to_rs(RS2_MAC, &tcp("203.0.113.8", 41003, VIP_PERSIST, 80).syn()),
        )
        .at(200),
        case(
            "NAT UDP: a reply 301 s after the last packet finds no connection (UDP timeout 300 s)",
            INT,
            from_rs(RS2_MAC, &udp(RS2, 53, CLIENT, 5353, b"late")),
            Expect::Pass,
        )
        .at(302),
        case(
            "persistence: a use refreshes the template (150 s after it, past 300 s from the first)",
            EXT,
            from_client(&tcp("203.0.113.8", 41004, VIP_PERSIST, 80).syn()),
            to_rs(RS2_MAC, &tcp("203.0.113.8", 41004, VIP_PERSIST, 80).syn()),
        )
        .at(350),
        case(
            "persistence: 301 s after its last use the template is gone and rr schedules (RS1)",
            EXT,
            from_client(&tcp("203.0.113.8", 41005, VIP_PERSIST, 80).syn()),
            to_rs(RS1_MAC, &tcp("203.0.113.8", 41005, VIP_PERSIST, 80).syn()),
        )
        .at(651),
        case(
            "DR: an ACK after 900 s of silence finds no connection (TCP established timeout)",
            EXT,
            from_client(&tcp(CLIENT, 40000, VIP_DR, 80).ack()),
            Expect::Drop(DropReason::NoConnection),
        )
        .at(902),
    ]
}

/// The test name of case `n`: its number and what it shows, in lower case with underscores.
fn name(n: usize, what: &str) -> String {
    let mut slug = String::new();
    for c in what.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.ends_with('_') {
            slug.push('_');
        }
    }
    format!("{n:02}_{}", slug.trim_matches('_'))
}

/// Runs the cases before `n` as set-up, then checks case `n`.
fn check(n: usize) -> Result<(), Failed> {
    let snap = snapshot();
    let mut fw = forwarder();
    let cases = table();
    for c in &cases[..n] {
        run(&mut fw, &snap, c.ingress, &c.input, c.at);
    }
    let c = &cases[n];
    let (verdict, out) = run(&mut fw, &snap, c.ingress, &c.input, c.at);
    let ok = match &c.expect {
        Expect::Tx(port, frame) => verdict == Verdict::Tx { port: *port } && out == *frame,
        Expect::Pass => verdict == Verdict::Pass && out == c.input,
        Expect::Drop(r) => verdict == Verdict::Drop(*r) && out == c.input,
        Expect::Wait => verdict == Verdict::Wait && out == c.input,
    };
    if ok {
        return Ok(());
    }
    let want = match &c.expect {
        Expect::Tx(p, f) => format!("Tx {{ port: {p} }} {}", hex(f)),
        Expect::Pass => "Pass".into(),
        Expect::Drop(r) => format!("Drop({r:?})"),
        Expect::Wait => "Wait".into(),
    };
    Err(format!(
        "{} (at {} s)\n   want {want}\n   got  {verdict:?} {}",
        c.what,
        c.at,
        hex(&out)
    )
    .into())
}

fn main() {
    let args = Arguments::from_args();
    let cases = table();
    let mut names = std::collections::HashSet::new();
    assert!(
        cases.windows(2).all(|w| w[0].at <= w[1].at),
        "the table's clock runs forward"
    );
    let trials = cases
        .iter()
        .enumerate()
        .map(|(n, c)| {
            assert!(
                names.insert(c.what),
                "two cases say the same thing: {}",
                c.what
            );
            Trial::test(name(n, c.what), move || check(n))
        })
        .collect();
    libtest_mimic::run(&args, trials).exit();
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
