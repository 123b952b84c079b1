//! Soak: a bounded run of mixed traffic with reconfiguration churn and health flaps. Two-armed
//! NAT; the service TCP and UDP 198.18.0.10:7 (echo) is never touched and must lose nothing;
//! the service :80 (HTTP, health-checked) has its weights edited, a real server added and
//! removed, and that server's HTTP server stopped and started; services :81… come and go
//! every second. At the end: no echo lost or corrupted, xvsd's RSS flat after warm-up, every
//! UMEM frame accounted for, the table drained of the removed servers.
//!
//! `XVS_SOAK_SECONDS` sets the length (60 in the suite; `tools/soak.sh` runs longer).

mod lab;

use lab::{Lab, serial};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const NAT: &str = r#"
interfaces: [ext0, int0]
services:
  - { proto: tcp, vip: 198.18.0.10, port: 7, scheduler: rr, reals: [ { addr: 198.18.1.11, method: nat }, { addr: 198.18.1.12, method: nat } ] }
  - { proto: udp, vip: 198.18.0.10, port: 7, scheduler: rr, reals: [ { addr: 198.18.1.11, method: nat }, { addr: 198.18.1.12, method: nat } ] }
  - proto: tcp
    vip: 198.18.0.10
    port: 80
    scheduler: wlc
    reals:
      - { addr: 198.18.1.11, method: nat, weight: 3, check: { type: http, path: /, interval: 1, timeout: 1, rise: 1, fall: 1 } }
      - { addr: 198.18.1.12, method: nat, weight: 1, check: { type: http, path: /, interval: 1, timeout: 1, rise: 1, fall: 1 } }
"#;

/// The client's loops, each for `secs` seconds, printing one JSON line of counts.
fn client(lab: &Lab, kind: &str, secs: u64) -> Child {
    let script = r#"
import json, socket, sys, time, os, http.client
kind, secs = sys.argv[1], float(sys.argv[2])
end = time.time() + secs
ok = bad = 0
n = 0
while time.time() < end:
    n += 1
    try:
        if kind == "tcp":
            data = os.urandom(8192 + n % 4096)
            s = socket.create_connection(("198.18.0.10", 7), timeout=5)
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
            back = bytearray()
            while True:
                b = s.recv(65536)
                if not b:
                    break
                back += b
            s.close()
            good = bytes(back) == data
        elif kind == "udp":
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.settimeout(1.0)
            q = os.urandom(64)
            s.sendto(q, ("198.18.0.10", 7))
            good = s.recvfrom(2048)[0] == q
            s.close()
            time.sleep(0.005)
        else:
            c = http.client.HTTPConnection("198.18.0.10", 80, timeout=3)
            c.request("GET", "/")
            good = c.getresponse().status == 200
            c.close()
    except Exception:
        good = False
    if good:
        ok += 1
    else:
        bad += 1
print(json.dumps({"ok": ok, "bad": bad}))
"#;
    Command::new("timeout")
        .arg((secs + 60).to_string())
        .args([
            "ip",
            "netns",
            "exec",
            &lab.ns("cl"),
            "python3",
            "-c",
            script,
        ])
        .args([kind, &secs.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("client")
}

fn counts(c: Child) -> (u64, u64) {
    let out = c.wait_with_output().expect("client");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("client output: {e}: {:?}", out.stdout));
    (v["ok"].as_u64().unwrap(), v["bad"].as_u64().unwrap())
}

fn rss_kib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

#[test]
fn mixed_traffic_with_churn_and_flaps_loses_nothing_and_holds_its_memory() {
    let _g = serial();
    let secs: u64 = std::env::var("XVS_SOAK_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let lab = Lab::up("two-armed", 1);
    let mut x = lab.xvsd(NAT, &[]);
    let pid = x.pid();
    let clients = [
        client(&lab, "tcp", secs),
        client(&lab, "udp", secs),
        client(&lab, "http", secs),
    ];
    let t0 = Instant::now();
    let mut rss = Vec::new();
    let mut tick = 0u64;
    while t0.elapsed() < Duration::from_secs(secs) {
        tick += 1;
        // Services :81..:90 come (ten seconds), then go (ten seconds).
        let k = tick - 1;
        let port = 81 + k % 10;
        let svc = format!("198.18.0.10:{port}");
        if (k / 10) % 2 == 0 {
            x.adm_ok(&["-A", "-t", &svc, "-s", "rr"]);
            x.adm_ok(&["-a", "-t", &svc, "-r", "198.18.1.13:80", "-m"]);
        } else {
            x.adm_ok(&["-D", "-t", &svc]);
        }
        // Weights of :80 edited; rs3 added to it and removed again.
        let w = (1 + tick % 5).to_string();
        x.adm_ok(&[
            "-e",
            "-t",
            "198.18.0.10:80",
            "-r",
            "198.18.1.12:80",
            "-m",
            "-w",
            &w,
        ]);
        match tick % 8 {
            2 => {
                x.adm_ok(&[
                    "-a",
                    "-t",
                    "198.18.0.10:80",
                    "-r",
                    "198.18.1.13:80",
                    "-m",
                    "-w",
                    "1",
                ]);
            }
            6 => {
                x.adm_ok(&["-d", "-t", "198.18.0.10:80", "-r", "198.18.1.13:80"]);
            }
            _ => {}
        }
        // rs2's HTTP server stops and starts (its health check flaps).
        match tick % 12 {
            3 => lab.stop_http("rs2", 80),
            8 => lab.start_http("rs2", 80),
            _ => {}
        }
        if tick % 5 == 0 {
            rss.push(rss_kib(pid));
        }
        std::thread::sleep(Duration::from_millis(800));
    }
    let [tcp, udp, http] = clients;
    let (tcp_ok, tcp_bad) = counts(tcp);
    let (udp_ok, udp_bad) = counts(udp);
    let (http_ok, http_bad) = counts(http);
    eprintln!(
        "soak {secs} s: tcp echo {tcp_ok} ok / {tcp_bad} bad, udp {udp_ok} / {udp_bad}, \
         http {http_ok} / {http_bad} (the churned service), rss KiB {rss:?}"
    );
    // What xvsd saw, for a failure's message: its drops and the trouble it logged.
    let s = x.stats();
    let told: Vec<String> = x
        .log_text()
        .lines()
        .filter(|l| l.contains(" WARN ") || l.contains(" ERROR ") || l.contains("neighbour"))
        // The health flaps are the test's own doing.
        .filter(|l| !l.contains("xvsd::health"))
        .map(str::to_string)
        .collect();
    let seen = format!(
        "drops {}\nworkers {}\nlog:\n{}",
        s["drops"],
        s["workers"],
        told.join("\n")
    );
    assert!(
        tcp_ok > 50 && udp_ok > 200 && http_ok > 50,
        "too little traffic"
    );
    assert_eq!(
        tcp_bad, 0,
        "echoes lost or corrupted on the unchanged TCP service\n{seen}"
    );
    assert_eq!(
        udp_bad, 0,
        "datagrams lost on the unchanged UDP service\n{seen}"
    );
    // Memory: after the first fifth (warm-up: threads, caches), flat within 4 MiB.
    let warm = &rss[rss.len() / 5..];
    let (lo, hi) = (
        *warm.iter().min().expect("samples"),
        *warm.iter().max().expect("samples"),
    );
    assert!(hi - lo <= 4096, "RSS grew from {lo} to {hi} KiB: {rss:?}");
    x.assert_frames_balanced();
    assert_eq!(s["alarms"].as_array().map(Vec::len), Some(0), "{s}");
    assert!(x.stop().success());
}
