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
