//! Golden tests: xvsadm's listings against the output of ipvsadm 1.31's own format strings
//! (the files in tests/golden were printed by a C program using ipvsadm's printf formats on the
//! same data), byte for byte.

use xvs_control::change::{Key, MethodName, RealSpec, ServiceSpec};
use xvs_control::listing::{self, Columns, Format};
use xvs_control::proto::{ConnView, ConnsReply, Counters, ListReply, Rates, RealView, ServiceView};

fn c(v: [u64; 5]) -> Counters {
    Counters {
        conns: v[0],
        in_pkts: v[1],
        out_pkts: v[2],
        in_bytes: v[3],
        out_bytes: v[4],
    }
}

fn r(v: [u64; 5]) -> Rates {
    Rates {
        cps: v[0],
        in_pps: v[1],
        out_pps: v[2],
        in_bps: v[3],
        out_bps: v[4],
    }
}

#[allow(clippy::too_many_arguments)]
fn real(
    addr: &str,
    port: u16,
    method: MethodName,
    weight: u32,
    act: u64,
    inact: u64,
    thr: (u32, u32),
    persist: u64,
    st: [u64; 5],
    rt: [u64; 5],
) -> RealView {
    RealView {
        spec: RealSpec {
            addr: addr.parse().unwrap(),
            port: Some(port),
            method,
            weight,
            u_threshold: thr.0,
            l_threshold: thr.1,
            tunnel: Default::default(),
        },
        active: act,
        inactive: inact,
        persist,
        stats: c(st),
        rates: r(rt),
        up: true,
        inhibit: false,
    }
}

/// The sample table, in an order ipvsadm's sorting has to fix.
fn sample() -> ListReply {
    let z = [0; 5];
    let web = ServiceView {
        service: "TCP 198.18.0.10:80".parse::<Key>().unwrap(),
        spec: ServiceSpec {
            scheduler: "wrr".into(),
            ..ServiceSpec::default()
        },
        stats: c([123_456_789, 1000, 2000, 98_765_432_101, 123_456_789_012_345]),
        rates: r([12, 3400, 3300, 1_234_567, 100_000_000_000_000]),
        reals: vec![
            real(
                "198.18.0.12",
                80,
                MethodName::Dr,
                3,
                7,
                1,
                (100, 10),
                0,
                [123_456_789, 998, 1997, 98_765_432_097, 123_456_789_012_340],
                [12, 3399, 3298, 1_234_564, 99_999_999_999_996],
            ),
            real(
                "198.18.0.11",
                80,
                MethodName::Dr,
                1,
                5,
                2,
                (0, 0),
                0,
                [1, 2, 3, 4, 5],
                [0, 1, 2, 3, 4],
            ),
        ],
    };
    let dns = ServiceView {
        service: "UDP 198.18.0.10:53".parse().unwrap(),
        spec: ServiceSpec {
            scheduler: "sh".into(),
            flags: "sh-fallback,sh-port".into(),
            persistent: Some(600),
            netmask: Some(24),
            ..ServiceSpec::default()
        },
        stats: c(z),
        rates: r(z),
        reals: vec![real(
            "198.18.0.13",
            5353,
            MethodName::Nat,
            1,
            0,
            4,
            (0, 0),
            3,
            z,
            z,
        )],
    };
    let v6 = ServiceView {
        service: "TCP [2001:db8::10]:443".parse().unwrap(),
        spec: ServiceSpec {
            scheduler: "rr".into(),
            ..ServiceSpec::default()
        },
        stats: c([5, 6, 7, 8, 9]),
        rates: r([1, 2, 3, 4, 5]),
        reals: vec![real(
            "2001:db8::11",
            443,
            MethodName::Tun,
            65535,
            1,
            0,
            (0, 0),
            0,
            [5, 6, 7, 8, 9],
            [1, 2, 3, 4, 5],
        )],
    };
    let fwm = ServiceView {
        service: "FWM 7".parse().unwrap(),
        spec: ServiceSpec {
            scheduler: "wlc".into(),
            persistent: Some(300),
            ..ServiceSpec::default()
        },
        stats: c(z),
        rates: r(z),
        reals: vec![real(
            "198.18.0.11",
            0,
            MethodName::Dr,
            1,
            0,
            0,
            (0, 0),
            0,
            z,
            z,
        )],
    };
    ListReply {
        table_size: 4096,
        timeouts: (900, 120, 300),
        services: vec![fwm, v6, dns, web],
    }
}

fn golden(name: &str) -> String {
    let p = format!("{}/tests/golden/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

fn check(columns: Columns, exact: bool, file: &str) {
    let f = Format {
        columns,
        exact,
        nosort: false,
        names: None,
    };
    let got = listing::list(&sample(), f, None).unwrap();
    let want = golden(file);
    assert!(
        got == want,
        "{file} differs:\n--- got\n{got}--- want\n{want}"
    );
}

#[test]
fn list_numeric() {
    check(Columns::Default, false, "list.txt");
}

#[test]
fn list_stats() {
    check(Columns::Stats, false, "stats.txt");
}

#[test]
fn list_stats_exact() {
    check(Columns::Stats, true, "stats-exact.txt");
}

#[test]
fn list_rate() {
    check(Columns::Rate, false, "rate.txt");
}

#[test]
fn list_thresholds() {
    check(Columns::Thresholds, false, "thresholds.txt");
}

#[test]
fn list_persistent_conn() {
    check(Columns::PersistentConn, false, "persistent-conn.txt");
}

#[test]
fn one_service_has_no_version_line() {
    let k: Key = "UDP 198.18.0.10:53".parse().unwrap();
    let got = listing::list(&sample(), Format::default(), Some(&k)).unwrap();
    let want: String = golden("list.txt")
        .lines()
        .skip(1)
        .take(2)
        .chain(golden("list.txt").lines().skip(6).take(2))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(got, want);
    assert!(
        listing::list(
            &sample(),
            Format::default(),
            Some(&"UDP 198.18.0.10:54".parse().unwrap())
        )
        .is_none()
    );
}

#[test]
fn connections_and_timeouts() {
    let conn = |proto: &str, exp, state: &str, cl: &str, cp, va: &str, vp, da: &str, dp| ConnView {
        proto: proto.into(),
        expires: exp,
        state: state.into(),
        client: cl.parse().unwrap(),
        cport: cp,
        vaddr: va.parse().unwrap(),
        vport: vp,
        daddr: da.parse().unwrap(),
        dport: dp,
        template: false,
    };
    let reply = ConnsReply {
        conns: vec![
            conn(
                "TCP",
                899,
                "ESTABLISHED",
                "198.18.0.100",
                40000,
                "198.18.0.10",
                80,
                "198.18.0.11",
                80,
            ),
            conn(
                "UDP",
                5,
                "UDP",
                "2001:db8::100",
                5353,
                "2001:db8::10",
                53,
                "2001:db8:1::11",
                53,
            ),
            conn(
                "TCP",
                100,
                "NONE",
                "198.18.0.0",
                0,
                "198.18.0.10",
                80,
                "198.18.0.12",
                80,
            ),
        ],
        truncated: false,
    };
    let got = listing::conns(&reply, false, None)
        + &listing::conns(&ConnsReply::default(), true, None)
        + &listing::timeouts((900, 120, 300));
    assert_eq!(got, golden("conns.txt"));
}

#[test]
fn save_lines() {
    let got = listing::save(&sample());
    assert_eq!(
        got,
        "\
-A -t 198.18.0.10:80 -s wrr
-a -t 198.18.0.10:80 -r 198.18.0.11:80 -g -w 1
-a -t 198.18.0.10:80 -r 198.18.0.12:80 -g -w 3 -x 100 -y 10
-A -u 198.18.0.10:53 -s sh -p 600 -M 255.255.255.0 -b sh-fallback,sh-port
-a -u 198.18.0.10:53 -r 198.18.0.13:5353 -m -w 1
-A -t [2001:db8::10]:443 -s rr
-a -t [2001:db8::10]:443 -r [2001:db8::11]:443 -i -w 65535
-A -f 7 -s wlc -p 300
-a -f 7 -r 198.18.0.11:0 -g -w 1
"
    );
}

#[test]
fn failed_servers_are_hidden_or_shown_with_weight_0() {
    let mut l = sample();
    let web = l
        .services
        .iter_mut()
        .find(|s| s.service.0.port() == 80)
        .unwrap();
    web.reals[0].up = false; // 198.18.0.12, weight 3
    let hidden = listing::list(&l, Format::default(), None).unwrap();
    assert!(!hidden.contains("198.18.0.12:80"), "{hidden}");
    let web = l
        .services
        .iter_mut()
        .find(|s| s.service.0.port() == 80)
        .unwrap();
    web.reals[0].inhibit = true;
    let shown = listing::list(&l, Format::default(), None).unwrap();
    assert!(
        shown.contains("  -> 198.18.0.12:80               Route   0      7          1         \n"),
        "{shown}"
    );
    assert!(
        listing::save(&l).contains("-r 198.18.0.12:80 -g -w 3 "),
        "save keeps the configured weight"
    );
}

#[test]
fn a_namer_names_every_address_of_the_listing() {
    fn named(a: &std::net::IpAddr, p: u16, udp: bool) -> String {
        format!("{}{a}:{p}", if udp { "u:" } else { "t:" })
    }
    let f = Format {
        names: Some(listing::Namer(named)),
        ..Format::default()
    };
    let got = listing::list(&sample(), f, None).unwrap();
    let plain = listing::list(&sample(), Format::default(), None).unwrap();
    assert_ne!(got, plain);
    for line in got.lines().skip(3) {
        let addr = line.split_whitespace().nth(1).unwrap_or("");
        assert!(
            addr.starts_with("t:") || addr.starts_with("u:") || line.starts_with("FWM"),
            "{line}"
        );
    }
}
