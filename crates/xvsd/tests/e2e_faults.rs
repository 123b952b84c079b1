//! Fault injection in the lab: what goes wrong around a running xvsd — an egress that stops
//! sending (transmit ring full), a UMEM that runs dry, neighbours that come and go, an
//! interface taken down, its steering program removed by someone else, control clients cut
//! off mid-request, a health check that hangs, a storm of SIGHUPs while traffic flows. Each
//! time xvsd survives, says so once (not per frame), recovers by itself, and every frame is
//! still accounted for (frames in = frames out). Root and the lab's tools are required: these
//! tests fail, never skip.

mod lab;

use lab::{Lab, Xvsd, payload, serial};
use std::process::Command;
use std::time::{Duration, Instant};

const NAT: &str = r#"
interfaces: [ext0, int0]
services:
  - { proto: tcp, vip: 198.18.0.10, port: 7, scheduler: rr, reals: [ { addr: 198.18.1.11, method: nat }, { addr: 198.18.1.12, method: nat } ] }
  - { proto: udp, vip: 198.18.0.10, port: 7, scheduler: rr, reals: [ { addr: 198.18.1.11, method: nat }, { addr: 198.18.1.12, method: nat } ] }
"#;

const DR: &str = r#"
interfaces: [ext0]
services:
  - { proto: tcp, vip: 198.18.0.10, port: 7, scheduler: rr, reals: [ { addr: 198.18.0.11, method: dr }, { addr: 198.18.0.12, method: dr } ] }
"#;

/// Waits up to `secs` for `text` in the daemon's log.
fn wait_for_log(x: &Xvsd, text: &str, secs: u64) {
    let t = Instant::now();
    while !x.log_text().contains(text) {
        assert!(
            t.elapsed() < Duration::from_secs(secs),
            "no \"{text}\" in the log within {secs} s:\n{}",
            x.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// How many log lines contain `text`.
fn lines_with(x: &Xvsd, text: &str) -> usize {
    x.log_text().lines().filter(|l| l.contains(text)).count()
}

/// Sends `n` UDP datagrams to the VIP from the client (bounded: one python loop).
fn udp_burst(lab: &Lab, n: u32) {
    let script = format!(
        "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n\
         for i in range({n}):\n    s.sendto(b'x'*100,('198.18.0.10',7))\n"
    );
    let out = lab.run("cl", &["python3", "-c", &script]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Makes the director's neighbour entries for the real servers permanent (static ARP, as
/// many LVS sites configure it): frames to them are then sent even while the link is down.
fn static_neighbours(lab: &Lab) {
    for n in 1..=2 {
        let mac = lab.sh(&format!("rs{n}"), "cat /sys/class/net/eth0/address");
        let mac = String::from_utf8_lossy(&mac.stdout).trim().to_string();
        let out = lab.sh(
            "dir",
            &format!("ip neigh replace 198.18.1.1{n} lladdr {mac} dev int0 nud permanent"),
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Takes the switch's end of int0 down or up (int0 loses or finds its carrier).
fn int0_carrier(lab: &Lab, on: bool) {
    let st = lab.sh(
        "sw",
        &format!("ip link set d1 {}", if on { "up" } else { "down" }),
    );
    assert!(st.status.success());
}

/// A TCP echo through the VIP comes back whole.
fn echo_ok(lab: &Lab, x: &Xvsd, len: usize, seed: u32) {
    let data = payload(len, seed);
    let back = lab.tcp_echo("198.18.0.10", 7, &data);
    assert!(
        back == data,
        "{} of {len} bytes came back\n{}",
        back.len(),
        x.log_text()
    );
}

#[test]
fn an_egress_that_stops_fills_the_transmit_ring_then_the_umem_and_both_recover() {
    let _g = serial();
    let lab = Lab::up("two-armed", 1);
    static_neighbours(&lab);
    // 1. Transmit ring full: the real servers' side loses its carrier; what xvs queues
    //    there waits in the ring, the rest is dropped and counted.
    let mut x = lab.xvsd(NAT, &[]);
    echo_ok(&lab, &x, 20_000, 1);
    int0_carrier(&lab, false);
    wait_for_log(&x, "interface int0 lost its carrier", 5);
    udp_burst(&lab, 20_000);
    wait_for_log(&x, "transmit ring full: started", 5);
    assert!(
        x.stats()["alarms"]
            .to_string()
            .contains("transmit ring full")
    );
    int0_carrier(&lab, true);
    wait_for_log(&x, "transmit ring full: ended", 10);
    wait_for_log(&x, "interface int0 has its carrier back", 5);
    echo_ok(&lab, &x, 50_000, 2);
    assert_eq!(
        lines_with(&x, "transmit ring full: started"),
        1,
        "{}",
        x.log_text()
    );
    assert_eq!(lines_with(&x, "lost its carrier"), 1, "{}", x.log_text());
    x.assert_frames_balanced();
    assert!(x.stop().success());

    // 2. UMEM exhaustion: with fewer frames than the rings hold, the frames waiting to leave
    //    by int0 are all there is; ext0's fill ring runs dry and its worker says it is behind.
    let mut x = lab.xvsd(NAT, &["--umem-frames", "512"]);
    echo_ok(&lab, &x, 20_000, 3);
    int0_carrier(&lab, false);
    udp_burst(&lab, 20_000);
    // The worker's gate sheds frames in XDP as the fill ring runs low (what gets through
    // before may find it empty): either is told.
    let shed = [
        "fill ring ran dry",
        "steering dropped frames for a worker behind",
    ];
    let t = Instant::now();
    let started = loop {
        if let Some(s) = shed
            .iter()
            .find(|s| x.log_text().contains(&format!("{s}: started")))
        {
            break *s;
        }
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "the exhausted UMEM was not told:\n{}",
            x.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    int0_carrier(&lab, true);
    wait_for_log(&x, &format!("{started}: ended"), 10);
    // The worker's gate opened again: new connections get through (before the fix the gate
    // stayed shut for good).
    for seed in 4..7 {
        echo_ok(&lab, &x, 50_000, seed);
    }
    assert_eq!(
        lines_with(&x, &format!("{started}: started")),
        1,
        "{}",
        x.log_text()
    );
    x.assert_frames_balanced();
    assert!(x.stop().success());
}

#[test]
fn neighbour_entries_that_flap_under_traffic_lose_no_stream() {
    let _g = serial();
    let lab = Lab::up("one-armed", 1);
    let mut x = lab.xvsd(DR, &[]);
    echo_ok(&lab, &x, 10_000, 1);
    // For 4 s, the real servers' neighbour entries are deleted every 50 ms (bounded loop).
    let mut flapper = lab.spawn(
        "dir",
        &[
            "sh",
            "-c",
            "for i in $(seq 80); do ip neigh del 198.18.0.11 dev ext0 2>/dev/null; \
             ip neigh del 198.18.0.12 dev ext0 2>/dev/null; sleep 0.05; done",
        ],
    );
    let t = Instant::now();
    let mut n = 0u32;
    while t.elapsed() < Duration::from_secs(4) {
        echo_ok(&lab, &x, 30_000, 10 + n);
        n += 1;
    }
    let _ = flapper.wait();
    assert!(n >= 3, "only {n} echoes in 4 s");
    echo_ok(&lab, &x, 30_000, 99);
    // Told as episodes, not per frame.
    assert!(lines_with(&x, "unknown_neighbour") <= 6, "{}", x.log_text());
    x.assert_frames_balanced();
    assert!(x.stop().success());
}

#[test]
fn an_interface_taken_down_and_up_is_served_again() {
    let _g = serial();
    let lab = Lab::up("one-armed", 1);
    let mut x = lab.xvsd(DR, &[]);
    echo_ok(&lab, &x, 10_000, 1);
    assert!(lab.sh("dir", "ip link set ext0 down").status.success());
    wait_for_log(&x, "interface ext0 is down", 5);
    assert!(lab.sh("dir", "ip link set ext0 up").status.success());
    wait_for_log(&x, "interface ext0 is up", 5);
    // Addresses and routes survive a down/up; the real servers' MACs are learned again.
    let t = Instant::now();
    loop {
        let data = payload(20_000, 7);
        if lab.tcp_echo("198.18.0.10", 7, &data) == data {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "no echo after ext0 came up:\n{}",
            x.log_text()
        );
    }
    assert_eq!(lines_with(&x, "interface ext0 is down"), 1);
    x.assert_frames_balanced();
    assert!(x.stop().success());
}

/// The BPF link ids of XDP links holding a program named `xvs_steer`, from bpftool.
fn steering_links() -> Vec<String> {
    let out = Command::new("bpftool")
        .args(["-j", "link", "show"])
        .output()
        .expect("bpftool (apt-get install bpftool; tools/setup.sh installs it)");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("bpftool -j");
    v.as_array()
        .expect("links")
        .iter()
        .filter(|l| l["type"] == "xdp")
        .filter_map(|l| l["id"].as_u64().map(|i| i.to_string()))
        .collect()
}

#[test]
fn a_steering_program_someone_else_removes_is_attached_again() {
    let _g = serial();
    let lab = Lab::up("one-armed", 1);
    let before = steering_links();
    let mut x = lab.xvsd(DR, &[]);
    echo_ok(&lab, &x, 10_000, 1);
    let ours: Vec<String> = steering_links()
        .into_iter()
        .filter(|l| !before.contains(l))
        .collect();
    assert_eq!(ours.len(), 1, "xvsd's one link: {ours:?}");
    let st = Command::new("bpftool")
        .args(["link", "detach", "id", &ours[0]])
        .status()
        .expect("bpftool");
    assert!(st.success());
    wait_for_log(&x, "was removed by someone else", 5);
    wait_for_log(&x, "steering program on ext0 restored", 5);
    for seed in 2..5 {
        echo_ok(&lab, &x, 40_000, seed);
    }
    assert_eq!(lines_with(&x, "was removed by someone else"), 1);
    x.assert_frames_balanced();
    assert!(x.stop().success());
}

#[test]
fn control_clients_cut_off_mid_request_leave_xvsd_serving() {
    let _g = serial();
    let lab = Lab::up("one-armed", 1);
    let mut x = lab.xvsd(DR, &[]);
    let tasks = || {
        std::fs::read_dir(format!("/proc/{}/task", x.pid()))
            .unwrap()
            .count()
    };
    let threads = tasks();
    let sock = x.socket.display().to_string();
    // Half a request and gone; nothing and gone; a whole request and gone before the answer;
    // bytes that are not JSON and gone.
    let script = format!(
        r#"
import socket
for i in range(60):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect("{sock}")
    if i % 4 == 0:
        s.sendall(b'{{"v":1,"cmd":"li')
    elif i % 4 == 1:
        pass
    elif i % 4 == 2:
        s.sendall(b'{{"v":1,"cmd":"list"}}\n')
    else:
        s.sendall(b'\x00\xff\xfe garbage')
    s.close()
"#
    );
    let out = Command::new("timeout")
        .args(["30", "python3", "-c", &script])
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let t = Instant::now();
    let list = x.adm_ok(&["-Ln"]);
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "-Ln took {:?}",
        t.elapsed()
    );
    assert!(list.contains("198.18.0.10:7"), "{list}");
    echo_ok(&lab, &x, 10_000, 1);
    // The connection threads are gone again.
    let t = Instant::now();
    while tasks() > threads {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "{} threads, {threads} before the clients",
            tasks()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(lines_with(&x, "control client") <= 60);
    assert!(x.stop().success());
}

#[test]
fn a_health_check_that_hangs_is_cut_off_and_leaves_nothing_behind() {
    let _g = serial();
    let lab = Lab::up("one-armed", 1);
    let marker = format!("sleep 4{}.25", std::process::id() % 100);
    let yaml = format!(
        r#"
interfaces: [ext0]
services:
  - proto: tcp
    vip: 198.18.0.10
    port: 7
    scheduler: rr
    reals:
      - {{ addr: 198.18.0.11, method: dr, check: {{ type: misc, command: "{marker}; true", timeout: 0.5, interval: 1, fall: 1, rise: 1 }} }}
      - {{ addr: 198.18.0.12, method: dr }}
"#
    );
    let mut x = lab.xvsd(&yaml, &[]);
    // The check hangs every second and is killed after 0.5 s: the server goes down.
    let t = Instant::now();
    loop {
        let h = x.request(r#"{"v":1,"cmd":"health"}"#);
        if h.to_string().contains("\"down\"") {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(10), "not down: {h}");
        std::thread::sleep(Duration::from_millis(200));
    }
    // The control loop is not held by the hanging checks.
    for _ in 0..5 {
        let t = Instant::now();
        x.adm_ok(&["-Ln"]);
        assert!(t.elapsed() < Duration::from_secs(2));
    }
    // Traffic goes to the server left.
    echo_ok(&lab, &x, 10_000, 1);
    std::thread::sleep(Duration::from_secs(3));
    // Each hanging check was killed with what it started: at most the one running now.
    let left = Command::new("pgrep")
        .args(["-f", &marker])
        .output()
        .expect("pgrep");
    let n = String::from_utf8_lossy(&left.stdout).lines().count();
    assert!(n <= 2, "{n} hanging checks still running");
    assert!(x.stop().success());
}

#[test]
fn a_storm_of_sighups_while_traffic_flows_loses_no_byte() {
    let _g = serial();
    let lab = Lab::up("one-armed", 1);
    let mut x = lab.xvsd(DR, &[]);
    let extra = format!(
        "{DR}  - {{ proto: tcp, vip: 198.18.0.10, port: 80, scheduler: wrr, reals: [ {{ addr: 198.18.0.11, method: dr }} ] }}\n"
    );
    // A long stream through the VIP on a thread of its own.
    let lab_prefix = lab.prefix.clone();
    let data = payload(4_000_000, 42);
    let sent = data.clone();
    let stream = std::thread::spawn(move || {
        let out = Command::new("timeout")
            .args(["60", "ip", "netns", "exec", &format!("{lab_prefix}cl")])
            .args([
                "python3",
                "-c",
                r#"
import socket, sys, threading
data = sys.stdin.buffer.read()
s = socket.create_connection(("198.18.0.10", 7), timeout=20)
def send():
    for i in range(0, len(data), 16384):
        s.sendall(data[i:i+16384])
    s.shutdown(socket.SHUT_WR)
threading.Thread(target=send).start()
out = bytearray()
while True:
    b = s.recv(65536)
    if not b:
        break
    out += b
sys.stdout.buffer.write(out)
"#,
            ])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .and_then(|mut c| {
                use std::io::Write;
                let mut stdin = c.stdin.take().expect("stdin");
                let w = std::thread::spawn(move || {
                    let _ = stdin.write_all(&sent);
                });
                let o = c.wait_with_output();
                let _ = w.join();
                o
            })
            .expect("stream");
        out.stdout
    });
    // 100 SIGHUPs in about 2 s; every tenth with the file changed (a service added or gone).
    for i in 0..100 {
        if i % 10 == 0 {
            let text = if (i / 10) % 2 == 0 {
                extra.as_str()
            } else {
                DR
            };
            std::fs::write(&x.config, text).expect("config");
        }
        x.hangup();
        std::thread::sleep(Duration::from_millis(20));
    }
    let back = stream.join().expect("stream thread");
    assert!(
        back == data,
        "{} of {} bytes came back through the SIGHUPs\n{}",
        back.len(),
        data.len(),
        x.log_text()
    );
    // The last file written has the extra service removed (i = 90: (9 % 2) == 1 → DR).
    std::thread::sleep(Duration::from_millis(300));
    let list = x.adm_ok(&["-Ln"]);
    assert!(!list.contains(":80"), "{list}");
    assert!(lines_with(&x, "reload refused") == 0, "{}", x.log_text());
    x.assert_frames_balanced();
    assert!(x.stop().success());
}

#[test]
fn a_reply_to_a_client_the_director_never_saw_waits_for_its_mac_instead_of_being_lost() {
    let _g = serial();
    let lab = Lab::up("two-armed", 1);
    let mut x = lab.xvsd(NAT, &[]);
    // The client's usual address: the director learnt its MAC from its ARP request.
    let data = payload(200, 1);
    assert_eq!(lab.udp_echo("198.18.0.10", 7, &data), data);
    // A second address on the client, used only now: the client knows the VIP's MAC already
    // and asks nothing, so the director has no MAC for it when the real server's answer comes
    // back. That answer waits while the kernel resolves the address, then leaves.
    assert!(
        lab.sh("cl", "ip addr add 198.18.0.101/24 dev eth0")
            .status
            .success()
    );
    for seed in 2..5 {
        let data = payload(200, seed);
        let got = lab.run_with_input(
            "cl",
            &[
                "socat",
                "-T",
                "2",
                "-",
                &format!("UDP4:198.18.0.10:7,bind=198.18.0.101:{}", 40000 + seed),
            ],
            &data,
        );
        assert_eq!(got, data, "datagram {seed} from the new address lost");
    }
    let s = x.stats();
    assert!(s["neigh_waits"].as_u64() >= Some(1), "nothing waited: {s}");
    assert_eq!(x.drops("unknown_neighbour"), 0, "{s}");
    x.assert_frames_balanced();
    assert!(x.stop().success());
}
