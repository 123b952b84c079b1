use super::*;
use xvs_core::conn::Timeouts;
use xvs_core::service::ServiceTable;

fn key(s: &str) -> Key {
    s.parse().unwrap()
}

#[test]
fn keys_round_trip_through_text() {
    for s in [
        "TCP 198.18.0.10:80",
        "UDP [2001:db8::10]:53",
        "SCTP 198.18.0.10:0",
        "FWM 5",
        "FWM 5 IPv6",
    ] {
        assert_eq!(key(s).0.to_string(), s);
    }
    assert!("TCP 198.18.0.10:99999".parse::<Key>().is_err());
    assert!("ICMP 198.18.0.10:1".parse::<Key>().is_err());
    assert!("FWM 0".parse::<Key>().is_err());
    assert_eq!(parse_fwmark("0x10"), Ok(16));
}

#[test]
fn addr_port_forms() {
    assert_eq!(
        parse_addr_port("198.18.0.1:80"),
        Some(("198.18.0.1".parse().unwrap(), Some(80)))
    );
    assert_eq!(
        parse_addr_port("198.18.0.1"),
        Some(("198.18.0.1".parse().unwrap(), None))
    );
    assert_eq!(
        parse_addr_port("[2001:db8::1]:8080"),
        Some(("2001:db8::1".parse().unwrap(), Some(8080)))
    );
    assert_eq!(
        parse_addr_port("2001:db8::1"),
        Some(("2001:db8::1".parse().unwrap(), None))
    );
    assert_eq!(parse_addr_port("[198.18.0.1]:80"), None);
    assert_eq!(parse_addr_port("host:80"), None);
    assert_eq!(parse_addr_port("198.18.0.1:http"), None);
}

#[test]
fn changes_print_as_ipvsadm_lines_and_travel_as_json() {
    let c = Change::AddService {
        service: key("TCP 198.18.0.10:80"),
        spec: ServiceSpec {
            scheduler: "wrr".into(),
            persistent: Some(300),
            netmask: Some(24),
            ..ServiceSpec::default()
        },
    };
    assert_eq!(
        c.to_string(),
        "-A -t 198.18.0.10:80 -s wrr -p 300 -M 255.255.255.0"
    );
    let j = serde_json::to_string(&c).unwrap();
    assert_eq!(
        j,
        r#"{"op":"add_service","service":"TCP 198.18.0.10:80","scheduler":"wrr","persistent":300,"netmask":24}"#
    );
    assert_eq!(serde_json::from_str::<Change>(&j).unwrap(), c);
    let r = Change::AddReal {
        service: key("FWM 3 IPv6"),
        real: RealSpec {
            addr: "2001:db8::11".parse().unwrap(),
            port: None,
            method: MethodName::Tun,
            weight: 2,
            u_threshold: 0,
            l_threshold: 0,
            tunnel: Default::default(),
        },
    };
    assert_eq!(r.to_string(), "-a -f 3 -6 -r [2001:db8::11]:0 -i -w 2");
    let j = serde_json::to_string(&r).unwrap();
    assert_eq!(serde_json::from_str::<Change>(&j).unwrap(), r);
}

fn sample() -> ServiceTable {
    let mut t = ServiceTable::new(16, 64);
    let mut to = Timeouts::default();
    let svc = key("TCP 198.18.0.10:80");
    apply_one(
        &mut t,
        &mut to,
        &Change::AddService {
            service: svc,
            spec: ServiceSpec {
                scheduler: "rr".into(),
                ..ServiceSpec::default()
            },
        },
    )
    .unwrap();
    for (a, w) in [("198.18.0.11", 1), ("198.18.0.12", 3)] {
        let real = RealSpec {
            addr: a.parse().unwrap(),
            port: None,
            method: MethodName::Dr,
            weight: w,
            u_threshold: 0,
            l_threshold: 0,
            tunnel: Default::default(),
        };
        apply_one(&mut t, &mut to, &Change::AddReal { service: svc, real }).unwrap();
    }
    t
}

#[test]
fn a_failed_batch_changes_nothing() {
    let t = sample();
    let to = Timeouts::default();
    let svc = key("TCP 198.18.0.10:80");
    let batch = [
        Change::DeleteReal {
            service: svc,
            addr: "198.18.0.11".parse().unwrap(),
            port: None,
        },
        Change::DeleteService {
            service: key("UDP 198.18.0.10:53"),
        },
    ];
    let r = apply(&t, &to, &batch).unwrap_err();
    assert_eq!(r.index, 1);
    assert_eq!(r.message, "No such service: UDP 198.18.0.10:53");
    assert_eq!(save(&t).len(), 3, "the original still has both reals");
    let (t2, _) = apply(&t, &to, &batch[..1]).unwrap();
    assert_eq!(save(&t2).len(), 2);
}

#[test]
fn diff_turns_one_table_into_the_other() {
    let old = sample();
    let to = Timeouts::default();
    let svc = key("TCP 198.18.0.10:80");
    let mut new_t = to;
    new_t.set_ipvsadm(1000, 0, 0);
    let (new, _) = apply(
        &old,
        &to,
        &[
            Change::EditReal {
                service: svc,
                real: RealSpec {
                    addr: "198.18.0.12".parse().unwrap(),
                    port: None,
                    method: MethodName::Dr,
                    weight: 5,
                    u_threshold: 0,
                    l_threshold: 0,
                    tunnel: Default::default(),
                },
            },
            Change::DeleteReal {
                service: svc,
                addr: "198.18.0.11".parse().unwrap(),
                port: None,
            },
            Change::AddService {
                service: key("UDP 198.18.0.10:53"),
                spec: ServiceSpec::default(),
            },
        ],
    )
    .unwrap();
    let d = diff(&old, &to, &new, &new_t);
    let lines: Vec<String> = d.iter().map(Change::to_string).collect();
    assert_eq!(
        lines,
        [
            "-d -t 198.18.0.10:80 -r 198.18.0.11:80",
            "-e -t 198.18.0.10:80 -r 198.18.0.12:80 -g -w 5",
            "--set 1000 120 300",
            "-A -u 198.18.0.10:53 -s wlc",
        ]
    );
    let (rebuilt, rt) = apply(&old, &to, &d).unwrap();
    assert!(diff(&rebuilt, &rt, &new, &new_t).is_empty());
    // An unchanged table diffs to nothing: its services keep their versions.
    assert!(diff(&old, &to, &old, &to).is_empty());
}

#[test]
fn zero_port_needs_persistence_and_dr_takes_the_virtual_port() {
    let mut t = ServiceTable::new(4, 4);
    let mut to = Timeouts::default();
    let svc = key("TCP 198.18.0.10:0");
    let e = apply_one(
        &mut t,
        &mut to,
        &Change::AddService {
            service: svc,
            spec: ServiceSpec::default(),
        },
    );
    let e = e.unwrap_err();
    assert_eq!(e.message, "Zero port specified for non-persistent service");
    assert_eq!(e.field, Some("port"));
    let svc = key("TCP 198.18.0.10:80");
    apply_one(
        &mut t,
        &mut to,
        &Change::AddService {
            service: svc,
            spec: ServiceSpec::default(),
        },
    )
    .unwrap();
    let real = RealSpec {
        addr: "198.18.0.11".parse().unwrap(),
        port: Some(8080),
        method: MethodName::Dr,
        weight: 1,
        u_threshold: 0,
        l_threshold: 0,
        tunnel: Default::default(),
    };
    apply_one(&mut t, &mut to, &Change::AddReal { service: svc, real }).unwrap();
    assert_eq!(
        save(&t)[1].to_string(),
        "-a -t 198.18.0.10:80 -r 198.18.0.11:80 -g -w 1"
    );
    let missing = Change::AddReal {
        service: key("TCP 198.18.0.10:81"),
        real: RealSpec {
            addr: "198.18.0.11".parse().unwrap(),
            port: None,
            method: MethodName::Nat,
            weight: 1,
            u_threshold: 0,
            l_threshold: 0,
            tunnel: Default::default(),
        },
    };
    assert_eq!(
        apply_one(&mut t, &mut to, &missing).unwrap_err().message,
        "Service not defined: TCP 198.18.0.10:81"
    );
}
