use super::*;
use xvs_core::service::ServiceKey;

const GOOD: &str = r#"
interfaces: [ext0, int0]
queues: 2
poll_mode: adaptive
timeouts: { tcp: 600 }
services:
  - proto: tcp
    vip: 198.51.100.10
    port: 80
    scheduler: wrr
    reals:
      - { addr: 198.18.1.11, port: 8080, method: nat, weight: 3 }
      - { addr: 198.18.1.12, method: nat, weight: 2 }
  - fwmark: 7
    scheduler: rr
    persistence: { timeout: 60, netmask: 24 }
    reals:
      - { addr: 198.18.1.13 }
marks:
  - { mark: 7, proto: tcp, dst: 198.51.100.0/24, ports: 8000-8999 }
"#;

#[test]
fn parses_and_applies() {
    let l = parse(GOOD, "good.yaml").unwrap();
    assert_eq!(l.config.interfaces, ["ext0", "int0"]);
    assert_eq!(l.config.poll_mode, Some(PollModeConfig::Adaptive));
    let a = l.apply(16, 64).unwrap();
    assert_eq!(a.timeouts.ipvsadm_triple(), (600, 120, 300));
    assert_eq!(a.services.services().count(), 2);
    let key = ServiceKey::Addr {
        proto: Protocol::Tcp,
        addr: "198.51.100.10".parse().unwrap(),
        port: 80,
    };
    let svc = a.services.find(&key).unwrap();
    assert_eq!(svc.options.scheduler, "wrr");
    let r2 = a
        .services
        .find_real(svc, &"198.18.1.12".parse().unwrap(), 80)
        .unwrap();
    assert_eq!(
        (r2.options.weight, r2.options.method),
        (2, xvs_core::service::Method::Nat)
    );
    assert_eq!(a.services.mark_rules()[0].ports, (8000, 8999));
}

fn err(text: &str) -> ConfigError {
    match parse(text, "bad.yaml") {
        Err(e) => e,
        Ok(l) => l.apply(16, 64).unwrap_err(),
    }
}

#[test]
fn daemon_settings_are_checked_where_the_file_is() {
    let e = err("metrics: not-an-address\n");
    assert_eq!(
        (e.line, e.field.as_deref()),
        (Some(1), Some("metrics")),
        "{e}"
    );
    let e = err("interfaces: [a]\nlog_level: loud\n");
    assert_eq!(
        (e.line, e.field.as_deref()),
        (Some(2), Some("log_level")),
        "{e}"
    );
    for ok in ["debug", "info,xvsd=trace", "WARN"] {
        assert!(apply::check_log_level(ok).is_ok(), "{ok}");
    }
    for bad in ["", "loud", "=debug", "info,"] {
        assert!(apply::check_log_level(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn a_file_that_is_not_a_configuration_is_not_quoted() {
    let e = err("root:x:0:0:root:/root:/bin/bash\n");
    assert!(!e.to_string().contains("root:x"), "{e}");
    assert!(e.to_string().contains("invalid type: string"), "{e}");
}

/// The rules of `-A`/`-a` hold in the file too: they are the same code.
#[test]
fn the_file_follows_the_rules_of_ipvsadm_commands() {
    let e = err("services:\n  - proto: tcp\n    vip: 192.0.2.1\n    port: 0\n");
    assert_eq!(e.field.as_deref(), Some("services[0].port"), "{e}");
    assert_eq!(e.message, "Zero port specified for non-persistent service");
    let e = err(
        "services:\n  - proto: tcp\n    vip: 192.0.2.1\n    port: 80\n    persistence:\n      timeout: 0\n",
    );
    assert_eq!(
        (e.line, e.field.as_deref()),
        (Some(6), Some("services[0].persistence.timeout")),
        "{e}"
    );
    let l = parse(
            "services:\n  - proto: tcp\n    vip: 192.0.2.1\n    port: 80\n    reals:\n      - { addr: 192.0.2.9, port: 8080 }\n",
            "dr.yaml",
        )
        .unwrap();
    let a = l.apply(16, 64).unwrap();
    let ports: Vec<u16> = a.services.reals().map(|r| r.port).collect();
    assert_eq!(
        ports,
        [80],
        "a DR real server takes the virtual port, as with -a -g"
    );
    let changes: Vec<String> = l
        .changes()
        .unwrap()
        .iter()
        .map(|s| s.change.to_string())
        .collect();
    assert_eq!(
        changes,
        [
            "--set 0 0 0",
            "-A -t 192.0.2.1:80 -s wlc",
            "-a -t 192.0.2.1:80 -r 192.0.2.9:8080 -g -w 1",
        ]
    );
}

#[test]
fn errors_name_file_line_and_field() {
    let e =
        err("services:\n  - proto: tcp\n    vip: 192.0.2.1\n    port: 80\n    scheduler: nope\n");
    assert_eq!(
        (e.line, e.field.as_deref()),
        (Some(5), Some("services[0].scheduler"))
    );
    assert!(
        e.to_string()
            .starts_with("bad.yaml:5: services[0].scheduler: Scheduler not found: nope"),
        "{e}"
    );

    let e = err(
        "services:\n  - proto: tcp\n    vip: 192.0.2.1\n    port: 80\n    reals:\n      - addr: 192.0.2.9\n        weight: 70000\n",
    );
    assert_eq!(
        (e.line, e.field.as_deref()),
        (Some(7), Some("services[0].reals[0].weight")),
        "{e}"
    );

    let e = err("services:\n  - proto: tcp\n    vip: not-an-ip\n    port: 80\n");
    assert_eq!(e.line, Some(3), "{e}");
    assert_eq!(e.field.as_deref(), Some("services[0].vip"), "{e}");

    let e = err("interfaces: [a]\nbogus: 1\n");
    assert_eq!(e.line, Some(2), "{e}");
    assert!(e.message.starts_with("unknown field `bogus`"), "{e}");

    let e = err("services:\n  - proto: tcp\n    vip: 192.0.2.1\n");
    assert_eq!(e.field.as_deref(), Some("services[0].port"), "{e}");

    let e = err("marks:\n  - { mark: 1, dst: 192.0.2.0/40 }\n");
    assert_eq!(
        (e.line, e.field.as_deref()),
        (Some(2), Some("marks[0].dst")),
        "{e}"
    );

    let e = err("queues: 0\n");
    assert_eq!(
        (e.line, e.field.as_deref()),
        (Some(1), Some("queues")),
        "{e}"
    );

    let e = err(
        "services:\n  - proto: tcp\n    vip: 192.0.2.1\n    port: 80\n  - proto: tcp\n    vip: 192.0.2.1\n    port: 80\n",
    );
    assert_eq!(
        (e.line, e.field.as_deref()),
        (Some(5), Some("services[1]")),
        "{e}"
    );
    assert!(e.message.contains("Service already exists"), "{e}");
}

const CHECKED: &str = "services:
  - proto: tcp
    vip: 192.0.2.1
    port: 80
    scheduler: rr
    check: { type: http, path: /health, status: [200, 204], interval: 0.5, fall: 2 }
    inhibit_on_failure: true
    quorum: 1
    notify_down: /usr/local/bin/page-me
    sorry_server: { addr: 192.0.2.99 }
    reals:
      - addr: 192.0.2.11
      - addr: 192.0.2.12
        check: { type: misc, command: /bin/true }
";

#[test]
fn health_settings() {
    let a = parse(CHECKED, "h.yaml").unwrap().apply(16, 64).unwrap();
    let (key, h) = &a.health[0];
    assert_eq!(key.to_string(), "TCP 192.0.2.1:80");
    assert!(h.inhibit_on_failure);
    assert_eq!(h.quorum, 1);
    assert_eq!(h.checks.len(), 2);
    assert_eq!(h.checks[0].check.to_string(), "HTTP GET /health [200,204]");
    assert_eq!((h.checks[0].port, h.checks[0].check.interval), (80, 0.5));
    assert_eq!(h.checks[1].check.to_string(), "MISC /bin/true");
    assert_eq!(
        h.checks[1].notify_down.as_deref(),
        Some("/usr/local/bin/page-me")
    );
    let svc = a.services.find(key).unwrap();
    let sorry = a.services.real(svc.sorry.unwrap()).unwrap();
    assert_eq!(
        (sorry.addr.to_string(), sorry.port),
        ("192.0.2.99".to_string(), 80)
    );
}

#[test]
fn bad_health_settings_are_located() {
    let e = err(&CHECKED.replace("interval: 0.5", "interval: -1"));
    assert_eq!(
        (e.line, e.field.as_deref()),
        (Some(6), Some("services[0].check.interval")),
        "{e}"
    );
    let e = err(&CHECKED.replace("type: misc, command: /bin/true", "type: misc"));
    assert_eq!(
        (e.line, e.field.as_deref()),
        (Some(14), Some("services[0].reals[1].check.command")),
        "{e}"
    );
    let e = err(&CHECKED.replace("type: http, path: /health,", "type: http,"));
    assert_eq!(e.field.as_deref(), Some("services[0].check.path"), "{e}");
    assert!(e.message.starts_with("missing"), "{e}");
    let e = err(&CHECKED.replace("type: misc", "type: smtp"));
    assert_eq!(e.line, Some(14), "{e}");
    assert!(e.message.starts_with("unknown variant `smtp`"), "{e}");
    let e = err(&CHECKED.replace("quorum: 1", "quorum: 3"));
    assert_eq!(e.field.as_deref(), Some("services[0].quorum"), "{e}");
}

#[test]
fn example_configurations_load_and_apply() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 5,
        "example configurations in {}: {files:?}",
        dir.display()
    );
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        assert_eq!(indent::hint(&text), None, "{}", f.display());
        let loaded = load(f).unwrap_or_else(|e| panic!("{e}"));
        let applied = loaded.apply(64, 256).unwrap_or_else(|e| panic!("{e}"));
        assert!(applied.services.services().count() > 0, "{}", f.display());
    }
}

#[test]
fn an_indentation_error_is_called_one() {
    // `port` indented under `vip`: YAML reads "198.18.0.10 port: 80" as the address.
    let e = err(
        "interfaces: [ext0]\nservices:\n  - proto: tcp\n    vip: 198.18.0.10\n      port: 80\n",
    );
    assert_eq!(e.line, Some(5), "{e}");
    assert!(e.message.contains("indentation error"), "{e}");
    assert!(!e.message.contains("invalid IP address"), "{e}");
    // A real server's key dedented under its list item.
    let e = err(
        "interfaces: [ext0]\nservices:\n  - proto: tcp\n    vip: 198.18.0.10\n    port: 80\n    reals:\n    - addr: 198.18.0.11\n     method: dr\n",
    );
    assert_eq!(e.line, Some(8), "{e}");
    assert!(e.message.contains("`method:` starts in column 6"), "{e}");
}

const HA: &str = "interfaces: [ext0]
vrrp:
  scripts:
    - { name: chk_nginx, script: 'pidof nginx', interval: 2, weight: -20 }
  instances:
    - name: VI_1
      interface: ext0
      vrid: 51
      state: master
      advert_int: 1
      authentication: { type: PASS, password: secret }
      virtual_ipaddress: [ { addr: 198.18.0.10, prefix: 32 } ]
      track_script: [ { name: chk_nginx } ]
sync: { interface: ext0, instance: VI_1 }
";

#[test]
fn vrrp_and_sync_sections_are_checked_with_the_file() {
    let loaded = parse(HA, "ha.yaml").unwrap();
    loaded.apply(64, 256).unwrap();
    let inst = &loaded.config.vrrp.instances[0];
    let p = crate::vrrp::params::params(inst).unwrap();
    assert_eq!(
        (p.priority, p.version),
        (255, 2),
        "state master without priority: 255"
    );
    let e = err(&HA.replace(
        "track_script: [ { name: chk_nginx } ]",
        "track_script: [ { name: nope } ]",
    ));
    assert_eq!(
        e.field.as_deref(),
        Some("vrrp.instances[0].track_script[0]"),
        "{e}"
    );
    assert_eq!(e.line, Some(13), "{e}");
    let e = err(&HA.replace("instance: VI_1", "instance: VI_9"));
    assert!(e.message.contains("no VRRP instance named 'VI_9'"), "{e}");
    let e = err(&HA.replace("vrid: 51", "vrid: 0"));
    assert_eq!(e.field.as_deref(), Some("vrrp.instances[0].vrid"), "{e}");
    let e = err(&HA.replace(
        "{ addr: 198.18.0.10, prefix: 32 }",
        "{ addr: '2001:db8::10' }",
    ));
    assert!(
        e.message.contains("IPv6 instances use version 3")
            || e.message.contains("VRRPv3 has no authentication"),
        "{e}"
    );
}
