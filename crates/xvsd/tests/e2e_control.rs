//! End-to-end tests of the control plane in the lab (root): the classic ipvsadm command lines
//! typed verbatim into xvsadm against a running xvsd with real traffic, listings byte for
//! byte, save → clear → restore, drain, zero, timeouts, errors, trace, metrics and top; and
//! hot reconfiguration (xvsadm, --reload, SIGHUP) under a steady stream without losing a packet
//! of the service that did not change.

mod lab;

use lab::{Lab, Xvsd, serial};
use std::time::{Duration, Instant};

const EMPTY_ONE_ARMED: &str = "interfaces: [ext0]\npoll_mode: adaptive\n";

fn curl_bodies(lab: &Lab, url: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| {
            let out = lab.run("cl", &["curl", "-s", "--max-time", "3", url]);
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        })
        .collect()
}

fn adm_err(x: &Xvsd, args: &[&str]) -> (i32, String) {
    let out = x.adm(args);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// LVS-DR as the HOWTO sets it up, typed into xvsadm.
#[test]
fn classic_dr_lines_verbatim() {
    let _g = serial();
    let lab = Lab::up("one-armed", 1);
    let x = lab.xvsd(EMPTY_ONE_ARMED, &["--metrics"]);
    x.adm_ok(&["-A", "-t", "198.18.0.10:80", "-s", "wrr"]);
    x.adm_ok(&[
        "-a",
        "-t",
        "198.18.0.10:80",
        "-r",
        "198.18.0.11:80",
        "-g",
        "-w",
        "1",
    ]);
    x.adm_ok(&[
        "-a",
        "-t",
        "198.18.0.10:80",
        "-r",
        "198.18.0.12",
        "-g",
        "-w",
        "1",
    ]);
    x.adm_ok(&["-A", "-u", "198.18.0.10:7", "-s", "rr"]);
    x.adm_ok(&["-a", "-u", "198.18.0.10:7", "-r", "198.18.0.13", "-g"]);
    x.adm_ok(&[
        "-A",
        "-t",
        "198.18.0.10:443",
        "-s",
        "sh",
        "-b",
        "sh-port",
        "-p",
        "600",
    ]);
    x.adm_ok(&["-a", "-t", "198.18.0.10:443", "-r", "198.18.0.13:443", "-i"]);
    // Give the control thread a moment to resolve the new real servers' MACs.
    std::thread::sleep(Duration::from_millis(1500));

    let bodies = curl_bodies(&lab, "http://198.18.0.10/", 6);
    let count = |n: &str| bodies.iter().filter(|b| *b == n).count();
    assert_eq!(
        (count("rs1"), count("rs2")),
        (3, 3),
        "wrr 1:1: {bodies:?}\n{}",
        x.log_text()
    );
    assert_eq!(lab.udp_echo("198.18.0.10", 7, b"ping"), b"ping");

    let want = "\
IP Virtual Server version 1.2.1 (size=1048576)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  198.18.0.10:80 wrr
  -> 198.18.0.11:80               Route   1      0          3         
  -> 198.18.0.12:80               Route   1      0          3         
TCP  198.18.0.10:443 sh (sh-port) persistent 600
  -> 198.18.0.13:443              Tunnel  1      0          0         
UDP  198.18.0.10:7 rr
  -> 198.18.0.13:7                Route   1      0          1         
";
    assert_eq!(x.adm_ok(&["-Ln"]), want);
    let stats = x.adm_ok(&["-L", "-n", "--stats"]);
    let line = stats
        .lines()
        .find(|l| l.starts_with("TCP  198.18.0.10:80 "))
        .unwrap_or_else(|| panic!("{stats}"));
    let cols: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(cols[2], "6", "6 connections: {stats}");
    assert!(
        cols[3].parse::<u64>().unwrap() >= 6 * 5,
        "in packets: {stats}"
    );
    assert_eq!(cols[4], "0", "DR replies bypass the director: {stats}");
    let conns = x.adm_ok(&["-Lnc"]);
    assert!(conns.starts_with("IPVS connection entries\npro expire state       source             virtual            destination\n"), "{conns}");
    assert_eq!(
        conns
            .lines()
            .filter(|l| l.contains(" 198.18.0.10:80 "))
            .count(),
        6,
        "{conns}"
    );
    assert_eq!(
        conns
            .lines()
            .filter(|l| l.starts_with("UDP ") && l.contains("198.18.0.13:7"))
            .count(),
        1,
        "{conns}"
    );

    // Save, clear, restore: the same table.
    let saved = x.adm_ok(&["-S", "-n"]);
    assert!(
        saved.contains("-A -t 198.18.0.10:443 -s sh -p 600 -b sh-port\n"),
        "{saved}"
    );
    assert!(
        saved.contains("-a -t 198.18.0.10:443 -r 198.18.0.13:443 -i -w 1\n"),
        "{saved}"
    );
    x.adm_ok(&["-C"]);
    assert_eq!(x.adm_ok(&["-Ln"]).lines().count(), 3, "cleared");
    let out = x.adm_with_input(&["-R"], saved.as_bytes());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(x.adm_ok(&["-S", "-n"]), saved);
    // A restore with one bad line applies nothing.
    let bad = "-A -t 198.18.0.10:8080 -s rr\n-a -t 198.18.0.10:9999 -r 198.18.0.11 -g\n";
    let out = x.adm_with_input(&["-R"], bad.as_bytes());
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Service not defined"), "{err}");
    assert!(
        !x.adm_ok(&["-Ln"]).contains(":8080"),
        "nothing of a refused batch applies"
    );

    // Drain rs2 (weight 0): new connections go to rs1 only.
    x.adm_ok(&[
        "-e",
        "-t",
        "198.18.0.10:80",
        "-r",
        "198.18.0.12:80",
        "-g",
        "-w",
        "0",
    ]);
    let bodies = curl_bodies(&lab, "http://198.18.0.10/", 4);
    assert!(
        bodies.iter().all(|b| b == "rs1"),
        "drained rs2 got traffic: {bodies:?}"
    );
    // Remove it.
    x.adm_ok(&["-d", "-t", "198.18.0.10:80", "-r", "198.18.0.12:80"]);
    assert!(!x.adm_ok(&["-Ln"]).contains("198.18.0.12"));

    // Zero, timeouts.
    x.adm_ok(&["-Z"]);
    let z = x.adm_ok(&["-Ln", "--stats"]);
    assert!(
        z.lines().skip(3).all(|l| l
            .split_whitespace()
            .skip(1)
            .all(|c| c == "0" || c.contains('.') || c.contains(':'))),
        "{z}"
    );
    x.adm_ok(&["--set", "1000", "100", "200"]);
    assert_eq!(
        x.adm_ok(&["-L", "--timeout"]),
        "Timeout (tcp tcpfin udp): 1000 100 200\n"
    );

    // Errors: ipvsadm's words, exit status 1, nothing changed.
    let before = x.adm_ok(&["-S", "-n"]);
    let (code, err) = adm_err(&x, &["-A", "-t", "198.18.0.10:80", "-s", "wrr"]);
    assert_eq!(
        (code, err.trim()),
        (1, "Service already exists: TCP 198.18.0.10:80")
    );
    let (code, err) = adm_err(
        &x,
        &["-a", "-t", "198.18.0.10:81", "-r", "198.18.0.11", "-g"],
    );
    assert_eq!(
        (code, err.trim()),
        (1, "Service not defined: TCP 198.18.0.10:81")
    );
    let (code, err) = adm_err(&x, &["-A", "-t", "198.18.0.10:81", "-s", "nosuch"]);
    assert_eq!((code, err.trim()), (1, "Scheduler not found: nosuch"));
    let (code, _) = adm_err(&x, &["-A", "-t", "198.18.0.10:81", "-s", "rr", "-w", "2"]);
    assert_eq!(code, 2);
    assert_eq!(x.adm_ok(&["-S", "-n"]), before);

    // Trace: a new client, and the UDP connection that exists.
    let t = x.adm_ok(&["trace", "tcp", "198.18.0.100:50000", "198.18.0.10:80"]);
    assert!(
        t.contains("verdict: forward")
            && t.contains("real:    198.18.0.11:80 (Route)")
            && t.contains("scheduler wrr"),
        "{t}"
    );
    assert!(t.contains("egress:  ext0 to "), "{t}");
    let t = x.adm_ok(&["trace", "tcp", "198.18.0.100:50000", "198.18.0.2:22"]);
    assert!(t.contains("verdict: host"), "{t}");

    // Metrics (only on 127.0.0.1 in the director's namespace) and the top view.
    let m = lab.run(
        "dir",
        &[
            "curl",
            "-s",
            "--max-time",
            "3",
            "http://127.0.0.1:9469/metrics",
        ],
    );
    let m = String::from_utf8_lossy(&m.stdout);
    assert!(
        m.contains(
            "xvs_real_connections_total{service=\"TCP 198.18.0.10:80\",real=\"198.18.0.11:80\"} "
        ),
        "{m}"
    );
    assert!(m.contains("# TYPE xvs_drops_total counter"), "{m}");
    let top = x.adm_ok(&["top", "--once"]);
    assert!(
        top.contains("TCP 198.18.0.10:80") && top.contains("-> 198.18.0.11:80"),
        "{top}"
    );
    // Not a terminal: 80 columns, headers whole.
    assert!(top.lines().all(|l| l.chars().count() <= 80), "{top}");
    assert!(
        top.contains("ActConn") && top.contains("InActConn"),
        "{top}"
    );
    x.assert_frames_balanced();
}

/// LVS-NAT, two-armed, typed into xvsadm: `-m` with port mapping.
#[test]
fn classic_nat_lines_verbatim() {
    let _g = serial();
    let lab = Lab::up("two-armed", 1);
    let x = lab.xvsd("interfaces: [ext0, int0]\npoll_mode: adaptive\n", &[]);
    x.adm_ok(&["-A", "-t", "198.18.0.10:80", "-s", "rr"]);
    for rs in ["198.18.1.11:8080", "198.18.1.12:8080"] {
        x.adm_ok(&["-a", "-t", "198.18.0.10:80", "-r", rs, "-m", "-w", "1"]);
    }
    std::thread::sleep(Duration::from_millis(1500));
    let bodies = curl_bodies(&lab, "http://198.18.0.10/", 4);
    let count = |n: &str| bodies.iter().filter(|b| *b == n).count();
    assert_eq!(
        (count("rs1"), count("rs2")),
        (2, 2),
        "{bodies:?}\n{}",
        x.log_text()
    );
    let l = x.adm_ok(&["-Ln"]);
    assert!(
        l.contains("  -> 198.18.1.11:8080             Masq    1      "),
        "{l}"
    );
    let s = x.adm_ok(&["-Ln", "--stats"]);
    let svc: Vec<&str> = s
        .lines()
        .find(|l| l.starts_with("TCP "))
        .unwrap()
        .split_whitespace()
        .collect();
    assert!(
        svc[4].parse::<u64>().unwrap() > 0,
        "NAT replies counted as OutPkts: {s}"
    );
}

const STREAM: &str = r#"
import socket, sys, time
n, gap = int(sys.argv[1]), float(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("198.18.0.100", 47000))
s.connect(("198.18.0.10", 7))
s.setblocking(False)
got = set()
def drain():
    while True:
        try:
            got.add(int(s.recv(64)))
        except BlockingIOError:
            return
t0 = time.monotonic()
for i in range(n):
    s.send(b"%08d" % i)
    drain()
    time.sleep(max(0, t0 + (i + 1) * gap - time.monotonic()))
end = time.monotonic() + 2
while time.monotonic() < end and len(got) < n:
    drain()
    time.sleep(0.01)
print(n, len(got), sorted(set(range(n)) - got)[:20])
"#;

fn file_config(extra: &str, weight: u32) -> String {
    format!(
        "interfaces: [ext0]\npoll_mode: adaptive\nservices:\n  - {{ proto: udp, vip: 198.18.0.10, port: 7, scheduler: rr, reals: [ {{ addr: 198.18.0.11 }}, {{ addr: 198.18.0.12 }} ] }}\n  - {{ proto: tcp, vip: 198.18.0.10, port: 80, scheduler: wrr, reals: [ {{ addr: 198.18.0.11, weight: {weight} }}, {{ addr: 198.18.0.12 }} ] }}\n{extra}"
    )
}

/// Services are added, edited and removed many times (xvsadm batches, --reload of changed
/// files, SIGHUP) while a UDP stream runs through an unchanged service: every datagram is
/// answered, and nothing is dropped.
#[test]
fn reconfiguration_under_load_loses_nothing() {
    let _g = serial();
    let lab = Lab::up("one-armed", 1);
    let x = lab.xvsd(&file_config("", 1), &[]);
    let n = 3000;
    let stream = lab.spawn("cl", &["python3", "-c", STREAM, &n.to_string(), "0.002"]);
    let t = Instant::now();
    let mut rounds = 0;
    let alt = file_config(
        "  - { proto: tcp, vip: 198.18.0.10, port: 8080, scheduler: lc, reals: [ { addr: 198.18.0.13 } ] }\n",
        3,
    );
    while t.elapsed() < Duration::from_secs(5) {
        x.adm_ok(&["-A", "-t", "198.18.0.10:81", "-s", "rr"]);
        x.adm_ok(&[
            "-a",
            "-t",
            "198.18.0.10:81",
            "-r",
            "198.18.0.11",
            "-g",
            "-w",
            "2",
        ]);
        x.adm_ok(&["-a", "-t", "198.18.0.10:81", "-r", "198.18.0.13", "-g"]);
        x.adm_ok(&["-E", "-t", "198.18.0.10:81", "-s", "wlc", "-p", "60"]);
        x.adm_ok(&[
            "-e",
            "-t",
            "198.18.0.10:81",
            "-r",
            "198.18.0.11",
            "-g",
            "-w",
            "0",
        ]);
        x.adm_ok(&["-d", "-t", "198.18.0.10:81", "-r", "198.18.0.13"]);
        x.adm_ok(&["-D", "-t", "198.18.0.10:81"]);
        std::fs::write(&x.config, &alt).expect("config");
        let r = x.adm_ok(&["--reload"]);
        assert!(
            r.contains("-A -t 198.18.0.10:8080 -s lc") && r.contains("-w 3"),
            "{r}"
        );
        std::fs::write(&x.config, file_config("", 1)).expect("config");
        if rounds % 2 == 0 {
            x.hangup();
            // SIGHUP is handled asynchronously: wait until the file's table is back.
            let t = Instant::now();
            while x.adm_ok(&["-S", "-n"]).contains(":8080 ") {
                assert!(
                    t.elapsed() < Duration::from_secs(5),
                    "SIGHUP not applied\n{}",
                    x.log_text()
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        } else {
            x.adm_ok(&["--reload"]);
        }
        rounds += 1;
    }
    let out = stream.wait_with_output().expect("stream");
    let report = String::from_utf8_lossy(&out.stdout);
    let fields: Vec<&str> = report.split_whitespace().collect();
    assert!(
        fields.len() >= 2,
        "stream: {report} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(fields[0], n.to_string());
    assert_eq!(
        fields[1],
        n.to_string(),
        "datagrams lost during reconfiguration: {report}\n{}",
        x.log_text()
    );
    assert!(rounds >= 10, "only {rounds} rounds of changes");
    eprintln!(
        "{rounds} rounds of changes (7 xvsadm commands and 2 reloads each), {n} datagrams, none lost"
    );
    let s = x.stats();
    let drops: u64 = s["drops"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(drops, 0, "{s}");
    // The stream was one connection all along, on one real server.
    let l = x.adm_ok(&["-Ln", "--stats", "--exact"]);
    let udp: Vec<Vec<&str>> = l
        .lines()
        .skip_while(|l| !l.starts_with("UDP "))
        .skip(1)
        .take(2)
        .map(|l| l.split_whitespace().collect())
        .collect();
    let conns: Vec<&str> = udp.iter().map(|c| c[2]).collect();
    assert!(conns == ["1", "0"] || conns == ["0", "1"], "{l}");
    assert!(
        x.log_text().contains("SIGHUP: configuration reloaded"),
        "{}",
        x.log_text()
    );
    // The file's service is back to its first form; the xvsadm one is gone.
    let saved = x.adm_ok(&["-S", "-n"]);
    assert!(
        !saved.contains(":81 ") && !saved.contains(":8080 "),
        "{saved}"
    );
    assert!(
        saved.contains("-a -t 198.18.0.10:80 -r 198.18.0.11:80 -g -w 1\n"),
        "{saved}"
    );
}

/// A reload of a broken file changes nothing and says where the problem is.
#[test]
fn a_bad_reload_leaves_the_running_state() {
    let _g = serial();
    let lab = Lab::up("one-armed", 1);
    let x = lab.xvsd(&file_config("", 1), &[]);
    let before = x.adm_ok(&["-S", "-n"]);
    std::fs::write(&x.config, "interfaces: [ext0]\nservices:\n  - { proto: tcp, vip: 198.18.0.10, port: 80, scheduler: nosuch }\n").expect("config");
    let (code, err) = adm_err(&x, &["--reload"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("xvsd.yaml:3: services[0].scheduler: Scheduler not found: nosuch"),
        "{err}"
    );
    x.hangup();
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        x.log_text().contains("SIGHUP: reload refused"),
        "{}",
        x.log_text()
    );
    assert_eq!(x.adm_ok(&["-S", "-n"]), before);
    assert_eq!(lab.udp_echo("198.18.0.10", 7, b"still"), b"still");
}
