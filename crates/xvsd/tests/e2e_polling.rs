//! End-to-end tests of the polling model and the admission checks in the steering program:
//! threaded-yield takes the interface's NAPI threads below the worker and gives everything
//! back at exit, and after a crash at the next start; the SYN budget drops a SYN burst in the
//! XDP program while established connections keep working; queues and cores are checked
//! before anything is set up. Root and the lab's tools are required (they fail, never skip).

mod lab;

use lab::{Lab, payload, serial};
use std::time::Duration;

const DR: &str = r#"
interfaces: [ext0]
services:
  - { proto: tcp, vip: 198.18.0.10, port: 7, scheduler: rr, reals: [ { addr: 198.18.0.11, method: dr }, { addr: 198.18.0.12, method: dr } ] }
"#;

fn config(poll: &str, extra: &str) -> String {
    format!("{}poll_mode: {poll}\n{extra}", DR.trim_start())
}

fn sysfs(lab: &Lab, path: &str) -> String {
    let out = lab.run("dir", &["cat", path]);
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// (pid, core) of ext0's NAPI threads as xvsd reports them.
fn napi_threads_of(stats: &serde_json::Value) -> Vec<(u32, usize)> {
    stats["steering"][0]["napi_threads"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|t| {
                    (
                        t["pid"].as_u64().unwrap_or(0) as u32,
                        t["core"].as_u64().unwrap_or(99) as usize,
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn affinity(pid: u32) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .unwrap_or("")
        .trim()
        .to_string()
}

/// threaded-yield: ext0's NAPI becomes threaded, its thread is pinned to the worker's core,
/// traffic flows, xvsadm stats says so; at exit `threaded` is 0 again and the record of what
/// to restore is gone.
#[test]
fn threaded_yield_takes_the_napi_thread_and_gives_it_back() {
    let _g = serial();
    let lab = Lab::up("one-armed", 1);
    assert_eq!(sysfs(&lab, "/sys/class/net/ext0/threaded"), "0");
    let mut x = lab.xvsd(&config("threaded-yield", ""), &["--cores", "1"]);
    let restore = x.socket.with_extension("restore");
    assert!(
        restore.exists(),
        "the settings to restore are recorded while running"
    );
    assert_eq!(
        sysfs(&lab, "/sys/class/net/ext0/threaded"),
        "1",
        "{}",
        x.log_text()
    );
    let s = x.stats();
    assert_eq!(s["steering"][0]["polling"], "threaded-yield", "{s}");
    let threads = napi_threads_of(&s);
    assert_eq!(threads.len(), 1, "one NAPI thread for one queue: {s}");
    let (pid, core) = threads[0];
    assert_eq!(core, 1);
    assert_eq!(
        affinity(pid),
        "1",
        "NAPI thread {pid} pinned to the worker's core"
    );
    for k in 0..3 {
        let data = payload(20000, k);
        assert_eq!(
            lab.tcp_echo("198.18.0.10", 7, &data),
            data,
            "{}",
            x.log_text()
        );
    }
    let text = x.adm_ok(&["stats"]);
    assert!(text.contains("threaded-yield"), "{text}");
    assert!(text.contains("ext0 queue 0"), "{text}");
    x.assert_frames_balanced();
    assert!(x.stop().success(), "{}", x.log_text());
    assert_eq!(
        sysfs(&lab, "/sys/class/net/ext0/threaded"),
        "0",
        "restored at exit"
    );
    assert!(!restore.exists(), "nothing left to restore");
    assert!(
        x.log_text().contains("receive settings restored"),
        "{}",
        x.log_text()
    );
}

/// kill -9 leaves the settings changed and their record behind; the next xvsd restores them
/// before anything else, whatever it is asked to poll with.
#[test]
fn a_crash_leaves_a_record_the_next_start_restores() {
    let _g = serial();
    let lab = Lab::up("one-armed", 1);
    let mut x = lab.xvsd(&config("threaded-yield", ""), &["--cores", "1"]);
    let restore = x.socket.with_extension("restore");
    x.kill_hard();
    assert_eq!(sysfs(&lab, "/sys/class/net/ext0/threaded"), "1");
    assert!(restore.exists(), "the record survives the crash");
    let mut y = lab.xvsd(&config("adaptive", ""), &[]);
    assert!(
        y.log_text()
            .contains("did not restore its receive settings"),
        "{}",
        y.log_text()
    );
    assert!(!restore.exists());
    assert_eq!(sysfs(&lab, "/sys/class/net/ext0/threaded"), "0");
    let data = payload(5000, 9);
    assert_eq!(lab.tcp_echo("198.18.0.10", 7, &data), data);
    assert!(y.stop().success());
}

/// A burst of SYNs beyond the queue's budget is dropped in the XDP program (counted), so only
/// the budget reaches the table; an established connection keeps working meanwhile.
#[test]
fn syns_beyond_the_budget_are_dropped_before_the_worker() {
    let _g = serial();
    let lab = Lab::up("one-armed", 1);
    let mut x = lab.xvsd(&config("adaptive", "syn_budget: 20\nsyn_burst: 5\n"), &[]);
    // 400 SYNs from distinct ports within about a tenth of a second (raw socket; the kernel
    // of the client namespace does not see them as its own connections).
    let script = r#"
import socket, struct, sys, time
def csum(b):
    if len(b) % 2: b += b'\0'
    s = sum(struct.unpack('!%dH' % (len(b)//2), b))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return (~s) & 0xffff
src, dst = socket.inet_aton('198.18.0.100'), socket.inet_aton('198.18.0.10')
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
for i in range(400):
    sport = 20000 + i
    tcp = struct.pack('!HHIIBBHHH', sport, 7, i, 0, 5 << 4, 0x02, 65535, 0, 0)
    pseudo = src + dst + struct.pack('!BBH', 0, 6, len(tcp))
    tcp = tcp[:16] + struct.pack('!H', csum(pseudo + tcp)) + tcp[18:]
    s.sendto(tcp, ('198.18.0.10', 0))
"#;
    let out = lab.run("cl", &["python3", "-c", script]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::thread::sleep(Duration::from_millis(300));
    let s = x.stats();
    let dropped: u64 = s["steering"][0]["dropped_syn_over_budget"]
        .as_u64()
        .unwrap_or(0);
    let created = s["conns_created"].as_u64().unwrap_or(0);
    assert!(dropped >= 300, "SYNs dropped in XDP: {dropped}\n{s}");
    assert!(
        created <= 60,
        "connections created: {created} (budget 20/s, burst 5)\n{s}"
    );
    assert!(created >= 5, "the burst is admitted: {created}\n{s}");
    // Once the budget has refilled, real connections open and carry data.
    std::thread::sleep(Duration::from_millis(500));
    let data = payload(30000, 3);
    assert_eq!(
        lab.tcp_echo("198.18.0.10", 7, &data),
        data,
        "{}",
        x.log_text()
    );
    let m = x.adm_ok(&["stats", "--json"]);
    assert!(m.contains("dropped_syn_over_budget"), "{m}");
    let metrics = x.request(r#"{"v":1,"cmd":"metrics"}"#);
    let text = metrics["text"].as_str().unwrap_or("");
    assert!(
        text.contains("xvs_steering_drops_total{interface=\"ext0\",reason=\"syn_over_budget\"}"),
        "{text}"
    );
    assert!(
        text.contains(
            "xvs_xsk_drops_total{interface=\"ext0\",queue=\"0\",reason=\"rx_ring_full\"}"
        ),
        "{text}"
    );
    assert!(
        text.contains("xvs_polling_info{interface=\"ext0\",mechanism=\"adaptive\"} 1"),
        "{text}"
    );
    assert!(x.stop().success());
}

/// More queues than the interface has, or a core the machine lacks: refused before anything
/// is attached, with the reason.
#[test]
fn queues_and_cores_are_checked_before_start() {
    let _g = serial();
    let lab = Lab::up("one-armed", 1);
    for (args, want) in [
        (vec!["--queues", "2"], "ext0 has 1 receive queue"),
        (
            vec!["--cores", "4095"],
            "core 4095 does not exist or is not allowed",
        ),
    ] {
        let out = lab.xvsd_fails(&config("adaptive", ""), &args);
        assert!(out.contains(want), "{args:?}: {out}");
        let xdp = lab.sh("dir", "ip -d link show ext0");
        let xdp = String::from_utf8_lossy(&xdp.stdout);
        assert!(
            !xdp.contains("prog/xdp"),
            "nothing attached after a refusal: {xdp}"
        );
    }
}
