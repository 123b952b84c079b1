//! End-to-end tests of what must survive: a crash leaves no XDP program behind (it is held by
//! a BPF link the process owns), a program one of ours left the old way is replaced with a log
//! line, someone else's program is kept unless `--force`. Root and the lab's tools (clang
//! among them, as for the build) are required: they fail, never skip.

mod lab;

use lab::{Lab, payload, serial};
use std::path::PathBuf;
use std::process::Command;

const DR: &str = r#"
interfaces: [ext0]
services:
  - { proto: tcp, vip: 198.18.0.10, port: 7, scheduler: rr, reals: [ { addr: 198.18.0.11, method: dr }, { addr: 198.18.0.12, method: dr } ] }
  - { proto: tcp, vip: "2001:db8::10", port: 7, scheduler: rr, reals: [ { addr: "2001:db8::11", method: dr }, { addr: "2001:db8::12", method: dr } ] }
"#;

/// A TCP echo through `[2001:db8::10]:7` with every packet carrying IPv6 extension headers:
/// hop-by-hop options and destination options (PadN), set on the client's socket. Returns
/// what came back.
fn echo_with_extension_headers(lab: &Lab, data: &[u8]) -> Vec<u8> {
    let script = r#"
import socket, sys
data = sys.stdin.buffer.read()
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
padn = bytes([0, 0, 1, 4, 0, 0, 0, 0])   # next header, length 0 (8 bytes), PadN of 4
s.setsockopt(socket.IPPROTO_IPV6, 54, padn)   # IPV6_HOPOPTS
s.setsockopt(socket.IPPROTO_IPV6, 59, padn)   # IPV6_DSTOPTS
s.settimeout(5)
s.connect(("2001:db8::10", 7))
s.sendall(data)
s.shutdown(socket.SHUT_WR)
out = b""
while True:
    b = s.recv(65536)
    if not b:
        break
    out += b
sys.stdout.buffer.write(out)
"#;
    lab.run_with_input("cl", &["python3", "-c", script], data)
}

/// What `ip link` says is attached to ext0 in the director (`prog/xdp id N` and the like),
/// empty if nothing.
fn xdp_on_ext0(lab: &Lab) -> String {
    let out = lab.sh("dir", "ip -details link show dev ext0");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    text.lines()
        .filter(|l| l.contains("prog/xdp") || l.contains("xdpgeneric") || l.contains(" xdp "))
        .map(str::trim)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Compiles an XDP program that passes everything, named `other_pass`.
fn foreign_program() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("xvs-hardening-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let src = dir.join("pass.c");
    std::fs::write(
        &src,
        "__attribute__((section(\"xdp\"), used)) int other_pass(void *ctx) { return 2; }\n\
         char _license[] __attribute__((section(\"license\"), used)) = \"GPL\";\n",
    )
    .expect("write pass.c");
    let obj = dir.join("pass.o");
    let st = Command::new("clang")
        .args(["-O2", "-target", "bpf", "-c"])
        .arg(&src)
        .arg("-o")
        .arg(&obj)
        .status()
        .expect("clang (the build needs it too) must be installed");
    assert!(
        st.success(),
        "clang could not compile a trivial XDP program"
    );
    obj
}

/// A TCP echo of `len` bytes through the IPv4 VIP comes back whole, then xvsd stops cleanly
/// and leaves no XDP program behind.
fn serves_then_leaves_nothing(lab: &Lab, x: &mut lab::Xvsd, len: usize, seed: u32) {
    let data = payload(len, seed);
    let back = lab.tcp_echo("198.18.0.10", 7, &data);
    assert!(
        back == data,
        "{} of {len} bytes came back\n{}",
        back.len(),
        x.log_text()
    );
    assert!(x.stop().success());
    let left = xdp_on_ext0(lab);
    assert!(left.is_empty(), "left attached: {left}");
}

/// Attaches the XDP object `obj` to the director's ext0 the way older tools do (a netdev flag
/// held by nobody).
fn attach_with_ip(lab: &Lab, obj: &std::path::Path) {
    let st = lab.sh(
        "dir",
        &format!(
            "ip link set dev ext0 xdpgeneric obj {} sec xdp",
            obj.display()
        ),
    );
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
}

/// The steering program's object as the build compiled it (target/…/build/xvs-io-*/out).
fn steering_object() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary");
    let profile = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target/<profile>");
    let build = profile.join("build");
    std::fs::read_dir(&build)
        .expect("target/<profile>/build")
        .flatten()
        .map(|e| e.path().join("out/steer.o"))
        .filter(|p| p.exists())
        .max_by_key(|p| p.metadata().and_then(|m| m.modified()).ok())
        .unwrap_or_else(|| panic!("no steer.o under {}", build.display()))
}

#[test]
fn a_crash_leaves_no_program_and_the_next_start_serves() {
    let _g = serial();
    let lab = Lab::up("one-armed", 1);
    let mut x = lab.xvsd(DR, &[]);
    assert!(!xdp_on_ext0(&lab).is_empty(), "xvsd attached its program");
    x.kill_hard();
    let left = xdp_on_ext0(&lab);
    assert!(left.is_empty(), "a killed xvsd left an XDP program: {left}");
    let mut y = lab.xvsd(DR, &[]);
    serves_then_leaves_nothing(&lab, &mut y, 4000, 3);
}

#[test]
fn someone_elses_program_is_kept_unless_forced() {
    let _g = serial();
    let lab = Lab::up("one-armed", 1);
    let obj = foreign_program();
    attach_with_ip(&lab, &obj);
    let said = lab.xvsd_fails(DR, &[]);
    assert!(
        said.contains("not xvs's") && said.contains("--force"),
        "{said}"
    );
    assert!(
        xdp_on_ext0(&lab).contains("xdpgeneric"),
        "the other program is still there"
    );
    let mut x = lab.xvsd(DR, &["--force"]);
    assert!(
        x.log_text().contains("replaced another XDP program"),
        "{}",
        x.log_text()
    );
    serves_then_leaves_nothing(&lab, &mut x, 3000, 5);
    let _ = std::fs::remove_dir_all(obj.parent().unwrap());
}

#[test]
fn a_stale_program_of_ours_is_replaced_with_a_log_line() {
    let _g = serial();
    let lab = Lab::up("one-armed", 1);
    // How an xvsd that attached with a netdev flag (before BPF links) left its program.
    attach_with_ip(&lab, &steering_object());
    let mut x = lab.xvsd(DR, &[]);
    assert!(
        x.log_text().contains("replaced a stale xvs XDP program"),
        "{}",
        x.log_text()
    );
    serves_then_leaves_nothing(&lab, &mut x, 3000, 6);
}

#[test]
fn ipv6_with_extension_headers_is_balanced_not_left_to_the_host() {
    let _g = serial();
    let lab = Lab::up("one-armed", 1);
    let x = lab.xvsd(DR, &[]);
    let data = payload(20_000, 8);
    let back = echo_with_extension_headers(&lab, &data);
    assert!(
        back == data,
        "{} of {} bytes came back\n{}",
        back.len(),
        data.len(),
        x.log_text()
    );
    let s = x.stats();
    assert_eq!(
        s["conns_created"], 1,
        "the forwarder made the connection: {s}"
    );
    assert_eq!(s["steering"][0]["ipv6_unparsed"], 0, "{s}");
}

/// The capabilities xvsd runs with (docs/deployment.md): it attaches XDP and talks netlink
/// (CAP_NET_ADMIN), loads BPF (CAP_BPF, and CAP_PERFMON for the verifier to allow its packet
/// pointer arithmetic), opens AF_XDP sockets (CAP_NET_RAW), schedules its
/// workers above the receive threads (CAP_SYS_NICE) and locks its UMEM (CAP_IPC_LOCK).
const CAPS: &str = "-all,+net_admin,+bpf,+perfmon,+net_raw,+sys_nice,+ipc_lock";

/// `setpriv` limiting what xvsd may ever hold to `caps` (root's capabilities after exec are
/// its bounding set).
fn setpriv(caps: &str) -> Vec<String> {
    vec![
        "setpriv".into(),
        format!("--bounding-set={caps}"),
        format!("--inh-caps={caps}"),
        "--".into(),
    ]
}

#[test]
fn it_runs_with_only_the_documented_capabilities_and_says_what_is_missing() {
    let _g = serial();
    let lab = Lab::up("one-armed", 1);
    let with = setpriv(CAPS);
    let with: Vec<&str> = with.iter().map(String::as_str).collect();
    let mut x = lab.xvsd_as(&with, DR, &[]);
    serves_then_leaves_nothing(&lab, &mut x, 5000, 11);
    // Without CAP_NET_ADMIN it refuses, and says why.
    let without = setpriv("-all,+bpf,+perfmon,+net_raw,+sys_nice,+ipc_lock");
    let without: Vec<&str> = without.iter().map(String::as_str).collect();
    let said = lab.xvsd_fails_as(&without, DR, &[]);
    assert!(
        said.contains("Operation not permitted") || said.contains("CAP_NET_ADMIN"),
        "{said}"
    );
}

/// CPU time (user + system, in clock ticks) the process `pid` has used so far.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/PID/stat");
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = &stat[stat.rfind(')').expect("stat") + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

/// Creates the director's interface `ifname` again as `tools/lab.sh` made it: a veth to the
/// switch's bridge (its end there named `peer`) with `addrs` (`ip addr add` arguments).
fn recreate(lab: &Lab, ifname: &str, peer: &str, addrs: &[&str]) {
    let (dir, sw) = (lab.ns("dir"), lab.ns("sw"));
    let mut script = format!(
        "set -e
         ip link add {ifname} netns {dir} type veth peer name {peer} netns {sw}
         ip -n {sw} link set {peer} master br0 up
"
    );
    for a in addrs {
        script += &format!("ip -n {dir} addr add {a} dev {ifname}\n");
    }
    script += &format!("ip -n {dir} link set {ifname} up\n");
    let out = Command::new("sh")
        .args(["-c", &script])
        .output()
        .expect("sh");
    assert!(
        out.status.success(),
        "recreating {ifname}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Waits up to 10 s for `text` in the daemon's log.
fn wait_for_log(x: &lab::Xvsd, text: &str) {
    let t = std::time::Instant::now();
    while !x.log_text().contains(text) {
        assert!(
            t.elapsed() < std::time::Duration::from_secs(10),
            "no \"{text}\" in the log:\n{}",
            x.log_text()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn a_served_interface_that_vanishes_is_let_go_and_served_again_when_it_returns() {
    let _g = serial();
    let lab = Lab::up("one-armed", 1);
    let mut x = lab.xvsd(DR, &[]);
    let data = payload(20_000, 11);
    assert!(
        lab.tcp_echo("198.18.0.10", 7, &data) == data,
        "{}",
        x.log_text()
    );
    let st = lab.sh("dir", "ip link del dev ext0");
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    wait_for_log(&x, "interface ext0 is gone");
    wait_for_log(&x, "socket closed: its interface is gone");
    assert_eq!(x.stats()["steering"][0]["mode"], "gone", "{}", x.stats());
    // With its only socket closed the worker waits instead of spinning on a dead socket.
    let pid = x.pid();
    let before = cpu_ticks(pid);
    std::thread::sleep(std::time::Duration::from_secs(2));
    let used = cpu_ticks(pid) - before;
    assert!(
        used < 100,
        "xvsd used {used} ticks of CPU in 2 s with its interface gone (spinning?)"
    );
    x.assert_frames_balanced();

    recreate(
        &lab,
        "ext0",
        "d0",
        &[
            "198.18.0.2/24",
            "2001:db8::2/64 nodad",
            "198.18.0.10/32",
            "2001:db8::10/128 nodad",
        ],
    );
    wait_for_log(&x, "interface ext0 is served again");
    assert!(
        !x.log_text().contains("that queue carries no traffic"),
        "{}",
        x.log_text()
    );
    assert_ne!(x.stats()["steering"][0]["mode"], "gone", "{}", x.stats());
    for seed in 0..3 {
        let data = payload(50_000, 20 + seed);
        let back = lab.tcp_echo("198.18.0.10", 7, &data);
        assert!(
            back == data,
            "after the interface came back: {} of 50000 bytes\n{}",
            back.len(),
            x.log_text()
        );
    }
    x.assert_frames_balanced();
    // `stop` fails the test if SIGTERM does not end it within 10 s.
    let st = x.stop();
    assert!(st.success(), "{st:?}\n{}", x.log_text());
    let left = xdp_on_ext0(&lab);
    assert!(left.is_empty(), "left attached: {left}");
}

const NAT: &str = r#"
interfaces: [ext0, int0]
services:
  - { proto: tcp, vip: 198.18.0.10, port: 7, scheduler: rr, reals: [ { addr: 198.18.1.11, method: nat }, { addr: 198.18.1.12, method: nat } ] }
"#;

/// Two-armed NAT: the real servers' side (int0) leaves and comes back while the client side
/// stays: only int0's sockets are opened again, and NAT works through the new interface.
#[test]
fn the_real_servers_side_leaving_and_returning_leaves_the_other_port_alone() {
    let _g = serial();
    let lab = Lab::up("two-armed", 1);
    let mut x = lab.xvsd(NAT, &[]);
    let data = payload(30_000, 5);
    assert!(
        lab.tcp_echo("198.18.0.10", 7, &data) == data,
        "{}",
        x.log_text()
    );
    let st = lab.sh("dir", "ip link del dev int0");
    assert!(st.status.success());
    wait_for_log(&x, "interface int0 is gone");
    assert_eq!(x.stats()["steering"][1]["mode"], "gone");
    assert_eq!(x.stats()["steering"][0]["gone"], false);
    recreate(
        &lab,
        "int0",
        "d1",
        &[
            "198.18.1.1/24",
            "2001:db8:1::1/64 nodad",
            "198.18.1.100/32",
            "2001:db8:1::100/128 nodad",
        ],
    );
    wait_for_log(&x, "interface int0 is served again");
    let log = x.log_text();
    assert!(
        !log.contains("every socket of the worker opened again"),
        "only int0's socket should have been opened again:\n{log}"
    );
    for seed in 0..3 {
        let data = payload(40_000, 30 + seed);
        let back = lab.tcp_echo("198.18.0.10", 7, &data);
        assert!(
            back == data,
            "NAT after int0 came back: {} of 40000 bytes\n{}",
            back.len(),
            x.log_text()
        );
    }
    x.assert_frames_balanced();
    assert!(x.stop().success());
}
