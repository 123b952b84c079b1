use super::*;

fn tcp(addr: &str, port: u16) -> ServiceKey {
    ServiceKey::Addr {
        proto: Protocol::Tcp,
        addr: addr.parse().unwrap(),
        port,
    }
}

#[test]
fn add_find_lookup_remove() {
    let mut t = ServiceTable::new(16, 64);
    let k = tcp("198.18.1.10", 80);
    let sid = t.add_service(k, ServiceOptions::default()).unwrap();
    assert_eq!(
        t.add_service(k, ServiceOptions::default()),
        Err(ConfigError::ServiceExists(k))
    );
    let r1 = t
        .add_real(
            &k,
            "198.18.2.1".parse().unwrap(),
            Some(8080),
            RealOptions::default(),
        )
        .unwrap();
    let r2 = t
        .add_real(
            &k,
            "198.18.2.2".parse().unwrap(),
            None,
            RealOptions::default(),
        )
        .unwrap();
    assert_eq!(
        t.real(r2).unwrap().port,
        80,
        "no port means the virtual port"
    );
    let vip = addr16(&"198.18.1.10".parse().unwrap());
    assert!(t.is_vip(&vip));
    let s = t.lookup(Family::V4, 6, &vip, 80).unwrap();
    assert_eq!(s.id, sid);
    assert_eq!(s.reals, vec![r1, r2]);
    assert!(t.lookup(Family::V4, 17, &vip, 80).is_none());
    assert!(t.lookup(Family::V4, 6, &vip, 81).is_none());

    let v = t.service(sid).unwrap().version;
    t.remove_real(&k, "198.18.2.1".parse().unwrap(), Some(8080))
        .unwrap();
    assert!(t.real(r1).unwrap().removed, "kept for existing connections");
    assert!(t.service(sid).unwrap().version > v);
    assert_eq!(
        t.remove_real(&k, "198.18.2.1".parse().unwrap(), Some(8080)),
        Err(ConfigError::NoSuchDestination(
            "198.18.2.1".parse().unwrap(),
            8080
        ))
    );
    // Re-adding restores the same slot (IPVS's trash).
    let again = t
        .add_real(
            &k,
            "198.18.2.1".parse().unwrap(),
            Some(8080),
            RealOptions::default(),
        )
        .unwrap();
    assert_eq!(again, r1);
    t.remove_service(&k).unwrap();
    assert!(!t.is_vip(&vip));
    assert!(t.real(r2).unwrap().removed);
    assert!(t.purge_real(r2));
    assert!(t.real(r2).is_none());
}

#[test]
fn rejects_bad_changes() {
    let mut t = ServiceTable::new(1, 1);
    let k = tcp("198.18.1.10", 80);
    let bad = ServiceOptions {
        scheduler: "nope".into(),
        ..Default::default()
    };
    assert_eq!(
        t.add_service(k, bad),
        Err(ConfigError::UnknownScheduler("nope".into()))
    );
    t.add_service(k, ServiceOptions::default()).unwrap();
    assert_eq!(
        t.add_service(tcp("198.18.1.11", 80), ServiceOptions::default()),
        Err(ConfigError::TableFull("virtual services"))
    );
    let heavy = RealOptions {
        weight: 70000,
        ..Default::default()
    };
    assert!(matches!(
        t.add_real(&k, "198.18.2.1".parse().unwrap(), None, heavy),
        Err(ConfigError::OutOfRange { what: "weight", .. })
    ));
    assert!(matches!(
        t.add_real(
            &k,
            "2001:db8::1".parse().unwrap(),
            None,
            RealOptions::default()
        ),
        Err(ConfigError::Invalid(_))
    ));
    let fnat = RealOptions {
        method: Method::FullNat,
        ..Default::default()
    };
    assert!(matches!(
        t.add_real(&k, "198.18.2.1".parse().unwrap(), None, fnat),
        Err(ConfigError::Invalid(_))
    ));
    t.add_real(
        &k,
        "198.18.2.1".parse().unwrap(),
        None,
        RealOptions::default(),
    )
    .unwrap();
    assert_eq!(
        t.add_real(
            &k,
            "198.18.2.2".parse().unwrap(),
            None,
            RealOptions::default()
        ),
        Err(ConfigError::TableFull("real servers"))
    );
}

#[test]
fn port_zero_and_fwmark_lookup() {
    let mut t = ServiceTable::new(8, 8);
    let any = tcp("198.18.1.10", 0);
    let sid_any = t.add_service(any, ServiceOptions::default()).unwrap();
    let web = tcp("198.18.1.10", 443);
    let sid_web = t.add_service(web, ServiceOptions::default()).unwrap();
    let vip = addr16(&"198.18.1.10".parse().unwrap());
    assert_eq!(t.lookup(Family::V4, 6, &vip, 443).unwrap().id, sid_web);
    assert_eq!(t.lookup(Family::V4, 6, &vip, 22).unwrap().id, sid_any);

    let fwm = ServiceKey::Fwmark {
        mark: 7,
        family: Family::V4,
    };
    let sid_fwm = t.add_service(fwm, ServiceOptions::default()).unwrap();
    t.set_mark_rules(vec![MarkRule {
        mark: 7,
        proto: Some(Protocol::Tcp),
        dst: "198.18.5.0".parse().unwrap(),
        prefix_len: 24,
        ports: (80, 90),
    }]);
    let inside = addr16(&"198.18.5.77".parse().unwrap());
    assert_eq!(t.lookup(Family::V4, 6, &inside, 85).unwrap().id, sid_fwm);
    assert!(t.lookup(Family::V4, 6, &inside, 91).is_none());
    assert!(t.lookup(Family::V4, 17, &inside, 85).is_none());
}

#[test]
fn prefix_helpers() {
    let a = addr16(&"198.18.5.77".parse().unwrap());
    let b = addr16(&"198.18.5.1".parse().unwrap());
    assert!(prefix_match(&a, &b, 96 + 24));
    assert!(!prefix_match(&a, &b, 96 + 32));
    assert!(prefix_match(&a, &b, 0));
    assert_eq!(
        mask_addr(&a, 96 + 24),
        addr16(&"198.18.5.0".parse().unwrap())
    );
    assert_eq!(mask_addr(&a, 128), a);
}

#[test]
fn ipv4_mapped_addresses_are_refused_and_never_stand_for_ipv4() {
    let mut t = ServiceTable::new(8, 8);
    let v4 = tcp("198.18.0.10", 80);
    t.add_service(v4, ServiceOptions::default()).unwrap();
    let mapped = tcp("::ffff:198.18.0.10", 80);
    assert!(
        t.find(&mapped).is_none(),
        "a mapped key does not find the IPv4 service"
    );
    assert_eq!(
        t.remove_service(&mapped),
        Err(ConfigError::NoSuchService(mapped))
    );
    assert!(t.find(&v4).is_some());
    let e = t
        .add_service(mapped, ServiceOptions::default())
        .unwrap_err();
    assert!(
        e.to_string().contains("write it as IPv4 (198.18.0.10)"),
        "{e}"
    );
    let v6 = tcp("2001:db8::10", 80);
    t.add_service(v6, ServiceOptions::default()).unwrap();
    let e = t
        .add_real(
            &v6,
            "::ffff:198.18.1.11".parse().unwrap(),
            None,
            RealOptions::default(),
        )
        .unwrap_err();
    assert!(e.to_string().contains("IPv4-mapped"), "{e}");
}
