//! End-to-end tests of health checking in the lab (root): real HTTP servers on the real
//! servers are stopped and started while curl connects through the VIP; xvsd's checks take a
//! failed server out of rotation and bring it back, the sorry server answers when all are
//! down, a quorum withdraws a service, MISC and wrong-status HTTP checks mark servers down, a
//! black-holed server's check times out without holding up the others, and `xvsadm health` /
//! `xvsadm check` show and change it all.

mod lab;

use lab::{Lab, Xvsd, serial};
use serde_json::Value;
use std::time::{Duration, Instant};

/// Seconds between checks in these tests, and how many failures/successes flip a state.
const INTERVAL: f64 = 0.5;
const FALL: u32 = 2;
const RISE: u32 = 2;
/// What the harness itself may add to a deadline: polling, starting processes, the control
/// loop's 50 ms tick.
const SLACK: Duration = Duration::from_millis(1000);

fn yaml_http_pair(notify_log: &str) -> String {
    format!(
        r#"interfaces: [ext0]
poll_mode: adaptive
services:
  - proto: tcp
    vip: 198.18.0.10
    port: 80
    scheduler: wrr
    check: {{ type: http, path: /, status: [200], interval: {INTERVAL}, timeout: 0.5, rise: {RISE}, fall: {FALL} }}
    sorry_server: {{ addr: 198.18.0.13, method: dr }}
    notify_down: 'echo "$XVS_REAL $XVS_STATE" >> {notify_log}'
    notify_up: 'echo "$XVS_REAL $XVS_STATE" >> {notify_log}'
    reals:
      - {{ addr: 198.18.0.11, method: dr }}
      - {{ addr: 198.18.0.12, method: dr }}
  - proto: tcp
    vip: 198.18.0.10
    port: 8080
    scheduler: rr
    quorum: 2
    check: {{ type: http, port: 80, path: /, interval: {INTERVAL}, timeout: 0.5, rise: {RISE}, fall: {FALL} }}
    reals:
      - {{ addr: 198.18.0.11, method: dr }}
      - {{ addr: 198.18.0.12, method: dr }}
"#
    )
}

/// The `xvsadm health --json` reply.
fn health(x: &Xvsd) -> Value {
    serde_json::from_str(&x.adm_ok(&["health", "--json"])).expect("health JSON")
}

/// The health entry of one real server of one service.
fn server(h: &Value, service: &str, real: &str) -> Value {
    h["servers"]
        .as_array()
        .expect("servers")
        .iter()
        .find(|s| s["service"] == service && s["real"] == real)
        .unwrap_or_else(|| panic!("{service} {real} not in {h:#}"))
        .clone()
}

/// Waits until the real server's state is `want`; returns how long that took.
fn wait_state(x: &Xvsd, service: &str, real: &str, want: &str, within: Duration) -> Duration {
    let t = Instant::now();
    loop {
        let h = health(x);
        if server(&h, service, real)["state"] == want {
            return t.elapsed();
        }
        assert!(
            t.elapsed() < within,
            "{service} {real} not {want} after {:?}:\n{}\n{}",
            t.elapsed(),
            x.adm_ok(&["health"]),
            x.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// `n` fresh HTTP connections through the VIP, counted by which real server answered.
fn answers(lab: &Lab, port: u16, n: usize) -> (std::collections::HashMap<String, usize>, usize) {
    lab.http_counts("198.18.0.10", port, n)
}

/// An HTTP server stops → it is taken out within fall×interval (+ one interval) while the other
/// keeps serving; it starts again → back after rise×interval (+ one interval). All down → the
/// sorry server answers. Below quorum the other service is withdrawn and comes back with it.
/// Every transition is logged once and runs the notify command; drain shows connections left.
#[test]
fn stopped_http_server_leaves_and_returns_sorry_server_and_quorum() {
    let _g = serial();
    let lab = Lab::up("one-armed", 1);
    let notify = std::env::temp_dir().join(format!("{}notify.log", lab.prefix));
    let _ = std::fs::remove_file(&notify);
    let x = lab.xvsd(&yaml_http_pair(&notify.display().to_string()), &[]);
    let (web, quorum) = ("TCP 198.18.0.10:80", "TCP 198.18.0.10:8080");
    let (rs1, rs2) = ("198.18.0.11:80", "198.18.0.12:80");
    for r in [rs1, rs2] {
        wait_state(&x, web, r, "up", secs(5.0));
    }

    let (c, errors) = answers(&lab, 80, 8);
    assert_eq!(
        (c.get("rs1"), c.get("rs2"), errors),
        (Some(&4), Some(&4), 0),
        "{c:?}"
    );

    // Stop rs2's web server: down within fall×interval plus one interval.
    lab.stop_http("rs2", 80);
    let took = wait_state(
        &x,
        web,
        rs2,
        "down",
        secs(f64::from(FALL + 1) * INTERVAL) + SLACK,
    );
    eprintln!("rs2 seen down {took:?} after its web server stopped");
    let (c, errors) = answers(&lab, 80, 8);
    assert_eq!((c.get("rs1"), c.len(), errors), (Some(&8), 1, 0), "{c:?}");
    let listing = x.adm_ok(&["-Ln"]);
    assert!(
        listing.contains("198.18.0.11:80") && !listing.contains("198.18.0.12:80"),
        "a failed server leaves -Ln (no inhibit_on_failure):\n{listing}"
    );
    // The quorum of 2 is lost on :8080 (its check probes port 80): the service is withdrawn.
    wait_state(&x, quorum, "198.18.0.12:8080", "down", secs(2.0));
    assert_eq!(
        health(&x)["withdrawn"],
        serde_json::json!([quorum]),
        "{}",
        x.adm_ok(&["health"])
    );
    let (c, errors) = answers(&lab, 8080, 2);
    assert_eq!(
        (c.len(), errors),
        (0, 2),
        "a withdrawn VIP:port answers nothing: {c:?}"
    );
    assert!(x.adm_ok(&["health"]).contains("WITHDRAWN (below quorum)"));

    // Start it again: back after rise×interval (plus one interval).
    lab.start_http("rs2", 80);
    let took = wait_state(
        &x,
        web,
        rs2,
        "up",
        secs(f64::from(RISE + 1) * INTERVAL) + SLACK,
    );
    eprintln!("rs2 seen up {took:?} after its web server answered again");
    let (c, errors) = answers(&lab, 80, 8);
    assert_eq!(
        (c.get("rs1"), c.get("rs2"), errors),
        (Some(&4), Some(&4), 0),
        "{c:?}"
    );
    wait_state(&x, quorum, "198.18.0.12:8080", "up", secs(3.0));
    assert_eq!(health(&x)["withdrawn"], serde_json::json!([]));
    let (c, errors) = answers(&lab, 8080, 2);
    assert_eq!((c.len(), errors), (2, 0), "{c:?}");

    // All down: the sorry server (rs3) answers.
    lab.stop_http("rs1", 80);
    lab.stop_http("rs2", 80);
    for r in [rs1, rs2] {
        wait_state(
            &x,
            web,
            r,
            "down",
            secs(f64::from(FALL + 1) * INTERVAL) + SLACK,
        );
    }
    let (c, errors) = answers(&lab, 80, 4);
    assert_eq!((c.get("rs3"), errors), (Some(&4), 0), "{c:?}");
    assert_eq!(
        server(&health(&x), web, "198.18.0.13:80")["state"],
        "sorry (serving)"
    );
    lab.start_http("rs1", 80);
    lab.start_http("rs2", 80);
    for r in [rs1, rs2] {
        wait_state(
            &x,
            web,
            r,
            "up",
            secs(f64::from(RISE + 1) * INTERVAL) + SLACK,
        );
    }
    let (c, _) = answers(&lab, 80, 4);
    assert_eq!(
        c.get("rs3"),
        None,
        "the sorry server stands aside again: {c:?}"
    );

    // Every transition logged once, counted, and notified.
    let log = x.log_text();
    let downs = log
        .lines()
        .filter(|l| l.contains("real server down") && l.contains("real=198.18.0.12:80 "))
        .filter(|l| l.contains("198.18.0.10:80 "))
        .count();
    assert_eq!(downs, 2, "rs2 went down twice, logged once each:\n{log}");
    let h = server(&health(&x), web, rs2);
    assert_eq!(h["transitions"], 4, "{h}");
    let metrics = x
        .try_request(r#"{"v":1,"cmd":"metrics"}"#)
        .expect("metrics");
    let text = metrics["text"].as_str().unwrap_or_default().to_string();
    assert!(
        text.lines()
            .any(|l| l.starts_with("xvs_health_transitions_total")
                && l.contains("198.18.0.12:80")
                && l.contains("198.18.0.10:80")
                && l.ends_with(" 4")),
        "{text}"
    );
    let notified = std::fs::read_to_string(&notify).unwrap_or_default();
    let rs2_lines: Vec<&str> = notified
        .lines()
        .filter(|l| l.starts_with("198.18.0.12:80 "))
        .collect();
    assert!(
        rs2_lines.len() >= 4
            && rs2_lines[..4]
                == [
                    "198.18.0.12:80 down",
                    "198.18.0.12:80 up",
                    "198.18.0.12:80 down",
                    "198.18.0.12:80 up"
                ],
        "notify commands:\n{notified}"
    );
    let _ = std::fs::remove_file(&notify);

    // Drain by hand: weight 0 keeps the open connection, sends new ones elsewhere, and
    // `xvsadm health` shows the connection left until it closes.
    let holder = lab.spawn(
        "cl",
        &[
            "python3",
            "-c",
            "import socket,time; s=socket.create_connection(('198.18.0.10',80)); time.sleep(4)",
        ],
    );
    let t = Instant::now();
    let busy = loop {
        let h = health(&x);
        if let Some(r) = [rs1, rs2]
            .into_iter()
            .find(|r| server(&h, web, r)["active"] == 1)
        {
            break r;
        }
        assert!(
            t.elapsed() < Duration::from_secs(3),
            "no active connection: {h:#}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let other = if busy == rs1 { "rs2" } else { "rs1" };
    x.adm_ok(&["-e", "-t", "198.18.0.10:80", "-r", busy, "-w", "0"]);
    let table = x.adm_ok(&["health"]);
    let line = table
        .lines()
        .find(|l| l.contains(busy) && !l.contains("8080"))
        .expect("drained server listed");
    assert!(line.contains("up (drained)"), "{table}");
    let cols: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(
        cols[cols.len() - 2],
        "1",
        "one active connection left:\n{table}"
    );
    let (c, errors) = answers(&lab, 80, 4);
    assert_eq!((c.get(other), errors), (Some(&4), 0), "{c:?}");
    let _ = holder.wait_with_output();
    let t = Instant::now();
    while server(&health(&x), web, busy)["active"] != 0 {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "connection never finished"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// An HTTPS server on `node`:`port` with a fresh self-signed certificate (made with openssl),
/// serving the real server's page.
fn start_https(lab: &Lab, node: &str, port: u16) {
    let dir = format!("/tmp/{}lab/{node}", lab.prefix);
    let out = lab.sh(
        node,
        &format!(
            "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN={node} \
             -keyout {dir}.key -out {dir}.crt 2>&1"
        ),
    );
    assert!(
        out.status.success(),
        "openssl req: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let server = format!(
        "import functools, http.server, ssl\n\
         ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n\
         ctx.load_cert_chain('{dir}.crt', '{dir}.key')\n\
         h = functools.partial(http.server.SimpleHTTPRequestHandler, directory='{dir}')\n\
         s = http.server.HTTPServer(('0.0.0.0', {port}), h)\n\
         s.socket = ctx.wrap_socket(s.socket, server_side=True)\n\
         s.serve_forever()\n"
    );
    std::fs::write(format!("{dir}.https.py"), server).expect("write server");
    let out = lab.sh(node, &format!("python3 {dir}.https.py >/dev/null 2>&1 &"));
    assert!(out.status.success());
    let t = Instant::now();
    while !lab
        .run(
            node,
            &[
                "curl",
                "-sk",
                "--max-time",
                "1",
                &format!("https://127.0.0.1:{port}/"),
            ],
        )
        .status
        .success()
    {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "HTTPS server on {node} does not answer"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Lines in a file (0 if it does not exist yet).
fn lines_in(path: &std::path::Path) -> usize {
    std::fs::read_to_string(path).map_or(0, |s| s.lines().count())
}

/// A wrong expected HTTP status and a failing MISC command mark servers down (weight 0 in
/// `-Ln` with inhibit_on_failure, all traffic to the healthy one); a black-holed server's check
/// times out while the other checks keep their pace; HTTPS checks read the page through TLS;
/// `xvsadm check` replaces and removes checks on the running daemon.
#[test]
fn misc_wrong_status_https_black_hole_and_xvsadm_check() {
    let _g = serial();
    let lab = Lab::up("one-armed", 1);
    let runs = std::env::temp_dir().join(format!("{}misc-runs", lab.prefix));
    let _ = std::fs::remove_file(&runs);
    start_https(&lab, "rs3", 8443);
    let yaml = format!(
        r#"interfaces: [ext0]
poll_mode: adaptive
services:
  - proto: tcp
    vip: 198.18.0.10
    port: 80
    scheduler: rr
    inhibit_on_failure: true
    reals:
      - {{ addr: 198.18.0.11, method: dr, check: {{ type: http, path: /, status: [204], interval: 0.5, timeout: 0.5 }} }}
      - {{ addr: 198.18.0.12, method: dr, check: {{ type: misc, command: "false", interval: 0.5 }} }}
      - {{ addr: 198.18.0.13, method: dr, check: {{ type: misc, command: 'echo "$XVS_REAL_ADDR" >> {runs}', interval: 0.5, start: down, rise: 2 }} }}
      - {{ addr: 198.18.0.19, method: dr, check: {{ type: tcp, interval: 0.5, timeout: 2 }} }}
  - proto: tcp
    vip: 198.18.0.10
    port: 443
    scheduler: rr
    reals:
      - {{ addr: 198.18.0.13, method: dr, check: {{ type: https, port: 8443, path: /index.html, expect: rs3, interval: 0.5, timeout: 1 }} }}
"#,
        runs = runs.display()
    );
    let x = lab.xvsd(&yaml, &[]);
    let web = "TCP 198.18.0.10:80";
    wait_state(&x, web, "198.18.0.11:80", "down", secs(3.0));
    wait_state(&x, web, "198.18.0.12:80", "down", secs(3.0));
    wait_state(&x, web, "198.18.0.13:80", "up", secs(3.0));
    // The black-holed server counts as up until its first check times out (2 s).
    wait_state(&x, web, "198.18.0.19:80", "down", secs(6.0));
    let h = health(&x);
    assert_eq!(
        server(&h, web, "198.18.0.11:80")["last"],
        "failed (HTTP status 200)",
        "{h:#}"
    );
    assert_eq!(
        server(&h, web, "198.18.0.12:80")["last"],
        "failed (exit 1)",
        "{h:#}"
    );
    let https = server(&h, "TCP 198.18.0.10:443", "198.18.0.13:443");
    assert_eq!(
        (https["state"].as_str(), https["last"].as_str()),
        (Some("up"), Some("ok (HTTP 200)")),
        "{h:#}"
    );

    // inhibit_on_failure: the failed servers stay in -Ln with weight 0; traffic goes to rs3.
    let listing = x.adm_ok(&["-Ln"]);
    for (real, weight) in [
        ("198.18.0.11:80", 0),
        ("198.18.0.12:80", 0),
        ("198.18.0.13:80", 1),
    ] {
        let line = listing
            .lines()
            .find(|l| l.contains(real))
            .unwrap_or_else(|| panic!("{real} missing:\n{listing}"));
        let cols: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(cols[3], weight.to_string(), "{listing}");
    }
    let (c, errors) = answers(&lab, 80, 6);
    assert_eq!((c.get("rs3"), errors), (Some(&6), 0), "{c:?}");

    // The black-holed server: its check times out after 2 s while every other check keeps its
    // 0.5 s pace (the MISC check on rs3 counts its own runs).
    let h = health(&x);
    let b = server(&h, web, "198.18.0.19:80");
    assert!(
        b["last"]
            .as_str()
            .is_some_and(|l| l.contains("timed out") || l.contains("no route")),
        "{b}"
    );
    let before = lines_in(&runs);
    let t = Instant::now();
    std::thread::sleep(Duration::from_secs(4));
    let ran = lines_in(&runs) - before;
    let window = t.elapsed().as_secs_f64();
    eprintln!("rs3's MISC check ran {ran} times in {window:.1} s beside the black-holed check");
    assert!(
        ran as f64 >= window / 0.5 * 0.6,
        "rs3's check ran {ran} times in {window:.1} s with a black-holed check in flight"
    );
    let h = health(&x);
    for r in ["198.18.0.11:80", "198.18.0.12:80", "198.18.0.13:80"] {
        let ago = server(&h, web, r)["last_ago"].as_f64().unwrap_or(f64::MAX);
        assert!(
            ago < 1.5,
            "{r} last checked {ago} s ago:\n{}",
            x.adm_ok(&["health"])
        );
    }

    // The HTTPS server stops: down.
    let script = format!("/tmp/{}lab/rs3.https.py", lab.prefix);
    assert_eq!(lab.kill("rs3", &[&script]), 1, "no HTTPS server to stop");
    wait_state(
        &x,
        "TCP 198.18.0.10:443",
        "198.18.0.13:443",
        "down",
        secs(4.0),
    );

    // xvsadm check: give rs1 a check it passes, remove rs2's check.
    x.adm_ok(&[
        "check",
        "-t",
        "198.18.0.10:80",
        "-r",
        "198.18.0.11",
        "--type",
        "http",
        "--path",
        "/",
        "--status",
        "200",
        "--interval",
        "0.5",
    ]);
    wait_state(&x, web, "198.18.0.11:80", "up", secs(3.0));
    x.adm_ok(&[
        "check",
        "-t",
        "198.18.0.10:80",
        "-r",
        "198.18.0.12",
        "--none",
    ]);
    wait_state(&x, web, "198.18.0.12:80", "unchecked", secs(2.0));
    let table = x.adm_ok(&["health"]);
    assert!(table.contains("HTTP GET / [200]"), "{table}");
    // Unchecked counts as up: rs1, rs2 and rs3 share the traffic.
    let (c, errors) = answers(&lab, 80, 6);
    assert_eq!(
        (c.get("rs1"), c.get("rs2"), c.get("rs3"), errors),
        (Some(&2), Some(&2), Some(&2), 0),
        "{c:?}\n{}",
        x.adm_ok(&["-Ln"])
    );
    // A check for a server that is not there, and a bad one, are refused.
    let out = x.adm(&[
        "check",
        "-t",
        "198.18.0.10:80",
        "-r",
        "198.18.0.99",
        "--type",
        "tcp",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("No such destination"));
    let out = x.adm(&[
        "check",
        "-t",
        "198.18.0.10:80",
        "-r",
        "198.18.0.11",
        "--type",
        "tcp",
        "--timeout",
        "0",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--timeout: 0 is not a positive number"));
    // A reload with a broken check is refused with where and what; nothing changes.
    let before = health(&x)["servers"].as_array().map(Vec::len);
    let good = std::fs::read_to_string(&x.config).expect("config");
    for (bad, field) in [
        ("type: misc, command: \"false\"", "reals[1].check.type"),
        ("status: [204], interval: 0.5", "reals[0].check.interval"),
        (
            "type: https, port: 8443, path: /index.html,",
            "services[1].reals[0].check.path",
        ),
    ] {
        let broken = match field {
            f if f.ends_with(".type") => good.replace(bad, "type: ping, command: \"false\""),
            f if f.ends_with(".interval") => good.replace(bad, "status: [204], interval: -1"),
            _ => good.replace(bad, "type: https, port: 8443,"),
        };
        assert_ne!(broken, good, "{bad}");
        std::fs::write(&x.config, &broken).expect("write config");
        let out = x.adm(&["--reload"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains(field), "{field}: {err}");
    }
    std::fs::write(&x.config, &good).expect("write config");
    assert_eq!(health(&x)["servers"].as_array().map(Vec::len), before);
    wait_state(&x, web, "198.18.0.11:80", "up", secs(1.0));
    let _ = std::fs::remove_file(&runs);
}
