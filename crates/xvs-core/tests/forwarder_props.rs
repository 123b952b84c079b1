//! Property tests: whatever arrives, the forwarder never panics, every frame gets exactly one
//! verdict, every drop is counted under its reason, and every well-formed frame it transmits
//! leaves well formed (checksums verified from scratch by etherparse).

use proptest::prelude::*;
use xvs_core::{DropReason, Verdict};
use xvs_testkit::lab::*;
use xvs_testkit::pkt::*;

/// Valid frames of every kind the lab knows, as seeds for mutation.
fn seeds() -> Vec<(u16, Vec<u8>)> {
    let c = |p: &dyn Fn() -> Vec<u8>| (EXT, p());
    vec![
        c(&|| from_client(&tcp(CLIENT, 40000, VIP_DR, 80).syn())),
        c(&|| from_client(&tcp(CLIENT, 40001, VIP_NAT, 80).syn())),
        c(&|| from_client(&tcp(CLIENT, 40002, VIP_TUN, 80).syn())),
        c(&|| from_client(&tcp(CLIENT, 40004, VIP_FNAT, 80).syn())),
        c(&|| from_client(&udp(CLIENT, 5353, VIP_NAT, 53, b"query"))),
        c(&|| from_client(&tcp(CLIENT6, 40001, VIP6_NAT, 80).syn())),
        c(&|| from_client(&icmp(CLIENT, VIP_DR, 8, 0, [0, 1, 0, 1], b"ping"))),
        c(&|| {
            from_client(&icmp(
                "198.18.0.1",
                VIP_NAT,
                3,
                4,
                [0, 0, 5, 0],
                &quote(&tcp(VIP_NAT, 80, CLIENT, 40001).ack(), 28),
            ))
        }),
        (
            INT,
            eth(INT_MAC, RS1_MAC, &tcp(RS1, 8080, CLIENT, 40001).syn().ack()),
        ),
        (
            INT,
            eth(
                INT_MAC,
                RS1_MAC,
                &icmp(
                    RS2,
                    CLIENT,
                    3,
                    3,
                    [0; 4],
                    &quote(&udp(CLIENT, 5353, RS2, 53, b"q"), 30),
                ),
            ),
        ),
    ]
}

/// Checks a transmitted frame: parses, and its IPv4/TCP/UDP/ICMP checksums are right.
fn well_formed(frame: &[u8]) -> Result<(), String> {
    let p = etherparse::SlicedPacket::from_ethernet(frame).map_err(|e| format!("{e}"))?;
    let mut v4 = None;
    let mut v6 = None;
    match &p.net {
        Some(etherparse::NetSlice::Ipv4(ip)) => {
            let h = ip.header().to_header();
            if h.header_checksum != h.calc_header_checksum() {
                return Err("bad IPv4 header checksum".into());
            }
            if ip.payload().ip_number == etherparse::IpNumber::IPV4 {
                return Ok(()); // TUN: the inner packet is the client's, untouched
            }
            v4 = Some(h);
        }
        Some(etherparse::NetSlice::Ipv6(ip)) => {
            if ip.payload().ip_number == etherparse::IpNumber::IPV6 {
                return Ok(());
            }
            v6 = Some(ip.header().to_header());
        }
        _ => return Err("not IP".into()),
    }
    let ok = match &p.transport {
        Some(etherparse::TransportSlice::Tcp(t)) => {
            let h = t.to_header();
            match (&v4, &v6) {
                (Some(i), _) => h.calc_checksum_ipv4(i, t.payload()).ok() == Some(t.checksum()),
                (_, Some(i)) => h.calc_checksum_ipv6(i, t.payload()).ok() == Some(t.checksum()),
                _ => false,
            }
        }
        Some(etherparse::TransportSlice::Udp(u)) => {
            let h = u.to_header();
            u.checksum() == 0
                || match (&v4, &v6) {
                    (Some(i), _) => h.calc_checksum_ipv4(i, u.payload()).ok() == Some(u.checksum()),
                    (_, Some(i)) => h.calc_checksum_ipv6(i, u.payload()).ok() == Some(u.checksum()),
                    _ => false,
                }
        }
        // ICMP: summed over the raw bytes (etherparse's typed view drops "unused" fields).
        Some(etherparse::TransportSlice::Icmpv4(i)) => {
            etherparse::checksum::Sum16BitWords::new()
                .add_slice(i.slice())
                .ones_complement()
                == 0
        }
        Some(etherparse::TransportSlice::Icmpv6(i)) => {
            let h = v6.as_ref().ok_or("icmpv6 over v4")?;
            let len = (i.slice().len() as u32).to_be_bytes();
            etherparse::checksum::Sum16BitWords::new()
                .add_16bytes(h.source)
                .add_16bytes(h.destination)
                .add_4bytes(len)
                .add_2bytes([0, 58])
                .add_slice(i.slice())
                .ones_complement()
                == 0
        }
        _ => true,
    };
    if ok {
        Ok(())
    } else {
        Err("bad transport checksum".into())
    }
}

/// Runs frames through one forwarder and checks the accounting.
/// Runs `frames` through one forwarder, checking what comes out and what is counted; returns
/// how many were transmitted.
fn run_all(frames: &[(u16, Vec<u8>)]) -> Result<u64, TestCaseError> {
    let snap = snapshot();
    let mut fw = forwarder();
    let mut drops = [0u64; DropReason::COUNT];
    let (mut tx, mut pass, mut waits) = (0u64, 0u64, 0u64);
    for (port, f) in frames {
        let (v, out) = run(&mut fw, &snap, *port, f, 1);
        match v {
            Verdict::Tx { .. } => {
                tx += 1;
                // Incremental updates keep a checksum exactly as right as it came in: a frame
                // that arrived well formed leaves well formed.
                if well_formed(f).is_err() {
                    continue;
                }
                if let Err(e) = well_formed(&out) {
                    return Err(TestCaseError::fail(format!(
                        "{e}: in {f:02x?} out {out:02x?}"
                    )));
                }
            }
            Verdict::Pass => {
                pass += 1;
                prop_assert_eq!(&out, f, "passed frames are untouched");
            }
            Verdict::Drop(r) => {
                drops[r as usize] += 1;
                prop_assert_eq!(&out, f, "dropped frames are untouched");
            }
            Verdict::Wait => {
                waits += 1;
                prop_assert_eq!(&out, f, "frames waiting for a neighbour are untouched");
            }
        }
    }
    let g = fw.stats().global();
    prop_assert_eq!(g.rx_frames, frames.len() as u64);
    prop_assert_eq!(g.tx_frames, tx);
    prop_assert_eq!(g.passed, pass);
    prop_assert_eq!(g.neigh_waits, waits);
    // Every dropped frame is counted under its reason; a frame counted beyond those was
    // answered with an ICMP error instead (time exceeded, unreachable, too big).
    let mut answered = 0;
    for r in DropReason::ALL {
        let (counted, dropped) = (g.drops[*r as usize], drops[*r as usize]);
        prop_assert!(
            counted >= dropped,
            "{}: {dropped} dropped, {counted} counted",
            r.label()
        );
        answered += counted - dropped;
    }
    prop_assert!(
        answered <= g.icmp_sent,
        "{answered} counted drops were neither dropped nor answered ({} ICMP sent)",
        g.icmp_sent
    );
    Ok(tx)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes(frames in proptest::collection::vec((0u16..3, proptest::collection::vec(any::<u8>(), 0..256)), 1..16)) {
        run_all(&frames)?;
    }

    #[test]
    fn mutated_valid_frames(
        picks in proptest::collection::vec((0usize..10, proptest::collection::vec((any::<u16>(), any::<u8>()), 0..6), any::<u16>()), 1..24)
    ) {
        let seeds = seeds();
        let frames: Vec<(u16, Vec<u8>)> = picks
            .into_iter()
            .map(|(i, flips, cut)| {
                let (port, mut f) = seeds[i % seeds.len()].clone();
                for (at, x) in flips {
                    let n = f.len();
                    f[usize::from(at) % n] ^= x;
                }
                if cut % 4 == 0 {
                    f.truncate(usize::from(cut) % (f.len() + 1));
                }
                (port, f)
            })
            .collect();
        run_all(&frames)?;
    }

    /// Any client, any ports, any flags, to any service: what goes out is well formed.
    #[test]
    fn transmitted_frames_are_well_formed(
        client: [u8; 4], sport in 1u16.., svc in 0usize..5, flags in 0u8..3,
        payload in proptest::collection::vec(any::<u8>(), 0..300), ttl in 2u8..,
    ) {
        // A client address (martian sources are dropped before anything is sent).
        prop_assume!(!matches!(client[0], 0 | 127 | 224..));
        let c = std::net::Ipv4Addr::from(client).to_string();
        let vips = [VIP_DR, VIP_NAT, VIP_TUN, VIP_FNAT, VIP_RR];
        let mut t = tcp(&c, sport, vips[svc], 80).payload(&payload).ttl(ttl);
        t = match flags { 0 => t.syn(), 1 => t.ack(), _ => t.fin().ack() };
        let syn = tcp(&c, sport, vips[svc], 80).syn();
        // The SYN opens the connection, so both it and what follows on it are transmitted.
        let sent = run_all(&[(EXT, from_client(&syn)), (EXT, from_client(&t))])?;
        prop_assert_eq!(sent, 2, "a SYN and a packet of its connection");
        let u = udp(&c, sport, VIP_NAT, 53, &payload).ttl(ttl);
        prop_assert_eq!(run_all(&[(EXT, from_client(&u))])?, 1, "a datagram to a UDP service");
    }
}
