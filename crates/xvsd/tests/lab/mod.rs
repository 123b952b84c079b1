//! Harness for the end-to-end tests: a lab built by `tools/lab.sh` (torn down on drop, even
//! when a test fails), an xvsd running in its director namespace (stopped on drop), and real
//! clients run inside the client namespace.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Tests share the machine's two cores and the kernel: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// Takes the lab lock (poisoning from a failed test is ignored).
pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Fails (does not skip) when the machine cannot run the lab, saying what is missing.
pub fn require() {
    // SAFETY-free check of the effective user through `id -u`.
    let uid = Command::new("id").arg("-u").output().expect("id");
    assert_eq!(
        String::from_utf8_lossy(&uid.stdout).trim(),
        "0",
        "the end-to-end tests need root (network namespaces, XDP); run them as root (CI does)"
    );
    for (tool, pkg) in [
        ("ip", "iproute2"),
        ("socat", "socat"),
        ("python3", "python3"),
        ("curl", "curl"),
        ("tcpdump", "tcpdump"),
        ("ethtool", "ethtool"),
        ("ping", "iputils-ping"),
        ("openssl", "openssl"),
    ] {
        need(tool, pkg, "the end-to-end tests");
    }
}

/// Fails, saying what to install, unless `tool` is on the PATH (`who` needs it).
pub fn need(tool: &str, pkg: &str, who: &str) {
    let ok = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "{who} need {tool} (apt-get install {pkg}; tools/setup.sh installs it)"
    );
}

/// A lab in network namespaces.
pub struct Lab {
    /// Namespace prefix.
    pub prefix: String,
}

static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

impl Lab {
    /// Builds a lab: `shape` is `one-armed` or `two-armed`.
    pub fn up(shape: &str, queues: u32) -> Lab {
        require();
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let prefix = format!("xe{}{n}-", std::process::id());
        // Built in `lab`, so its drop tears down whatever `up` made even when it fails.
        let lab = Lab { prefix };
        let out = lab.script(&["up", shape, "--queues", &queues.to_string()]);
        assert!(
            out.status.success(),
            "lab up failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        lab
    }

    fn script(&self, args: &[&str]) -> Output {
        Command::new("bash")
            .arg(repo().join("tools/lab.sh"))
            .args(args)
            .args(["--prefix", &self.prefix])
            .output()
            .expect("run tools/lab.sh")
    }

    /// The lab's scratch directory (configurations, logs, sockets), removed with the lab.
    fn scratch_path(&self) -> PathBuf {
        std::env::temp_dir().join(format!("{}e2e", self.prefix))
    }

    /// [`Lab::scratch_path`], made if missing.
    pub fn scratch(&self) -> PathBuf {
        let dir = self.scratch_path();
        std::fs::create_dir_all(&dir).expect("tmp dir");
        dir
    }

    /// The full namespace name of a node.
    pub fn ns(&self, node: &str) -> String {
        format!("{}{node}", self.prefix)
    }

    /// Runs a command in a node's namespace (bounded to 60 s).
    pub fn run(&self, node: &str, cmd: &[&str]) -> Output {
        Command::new("timeout")
            .args(["60", "ip", "netns", "exec", &self.ns(node)])
            .args(cmd)
            .output()
            .expect("ip netns exec")
    }

    /// Starts a command in a node's namespace without waiting (bounded to 120 s).
    pub fn spawn(&self, node: &str, cmd: &[&str]) -> Child {
        Command::new("timeout")
            .args(["120", "ip", "netns", "exec", &self.ns(node)])
            .args(cmd)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn")
    }

    /// Runs a shell command line in a node's namespace (bounded to 60 s).
    pub fn sh(&self, node: &str, line: &str) -> Output {
        self.run(node, &["sh", "-c", line])
    }

    /// Runs a command with `input` on stdin; returns its stdout.
    pub fn run_with_input(&self, node: &str, cmd: &[&str], input: &[u8]) -> Vec<u8> {
        let mut child = Command::new("timeout")
            .args(["30", "ip", "netns", "exec", &self.ns(node)])
            .args(cmd)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        let mut stdin = child.stdin.take().expect("stdin");
        let data = input.to_vec();
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(&data);
        });
        let out = child.wait_with_output().expect("wait");
        let _ = writer.join();
        out.stdout
    }

    /// Sends `payload` over TCP to `addr:port` from the client and returns what came back
    /// (the real servers echo on port 7).
    pub fn tcp_echo(&self, addr: &str, port: u16, payload: &[u8]) -> Vec<u8> {
        let target = if addr.contains(':') {
            format!("TCP6:[{addr}]:{port}")
        } else {
            format!("TCP4:{addr}:{port}")
        };
        self.run_with_input(
            "cl",
            &["socat", "-T", "5", "-t", "5", "-", &target],
            payload,
        )
    }

    /// Sends one UDP datagram and returns the reply.
    pub fn udp_echo(&self, addr: &str, port: u16, payload: &[u8]) -> Vec<u8> {
        let target = if addr.contains(':') {
            format!("UDP6:[{addr}]:{port}")
        } else {
            format!("UDP4:{addr}:{port}")
        };
        self.run_with_input("cl", &["socat", "-T", "2", "-", &target], payload)
    }

    /// Opens `n` HTTP connections to `host:port` from the client (one request each) and counts
    /// the answers by body (the real servers answer with their name).
    pub fn http_counts(&self, host: &str, port: u16, n: usize) -> (HashMap<String, usize>, usize) {
        let script = r#"
import http.client, json, sys, collections
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
counts, errors = collections.Counter(), 0
for _ in range(n):
    try:
        c = http.client.HTTPConnection(host, port, timeout=3)
        c.request("GET", "/")
        counts[c.getresponse().read().decode().strip()] += 1
        c.close()
    except Exception:
        errors += 1
print(json.dumps({"counts": counts, "errors": errors}))
"#;
        let out = self.run(
            "cl",
            &[
                "python3",
                "-c",
                script,
                host,
                &port.to_string(),
                &n.to_string(),
            ],
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "http client output: {e}: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        let counts = v["counts"]
            .as_object()
            .expect("counts")
            .iter()
            .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0) as usize))
            .collect();
        (counts, v["errors"].as_u64().unwrap_or(0) as usize)
    }

    /// Kills (SIGKILL) the processes in a node's namespace whose arguments after the program
    /// name start with `args`; returns how many.
    pub fn kill(&self, node: &str, args: &[&str]) -> usize {
        let out = Command::new("ip")
            .args(["netns", "pids", &self.ns(node)])
            .output()
            .expect("ip netns pids");
        let mut killed = 0;
        for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let argv: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
            if argv.len() > args.len()
                && argv[1..=args.len()]
                    .iter()
                    .zip(args)
                    .all(|(a, b)| *a == b.as_bytes())
            {
                let _ = Command::new("kill").args(["-KILL", pid]).status();
                killed += 1;
            }
        }
        killed
    }

    /// Stops a real server's HTTP server on `port` (the lab's `python3 -m http.server PORT`),
    /// waiting until it is gone.
    pub fn stop_http(&self, node: &str, port: u16) {
        let killed = self.kill(node, &["-m", "http.server", &port.to_string()]);
        assert_eq!(killed, 1, "no HTTP server on {node}:{port} to stop");
        let t = Instant::now();
        while self.serves_http(node, port) {
            assert!(
                t.elapsed() < Duration::from_secs(5),
                "{node}:{port} still answers"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts a real server's HTTP server on `port` again (serving "rsN"), waiting until it
    /// answers.
    pub fn start_http(&self, node: &str, port: u16) {
        let dir = format!("/tmp/{}lab/{node}", self.prefix);
        let out = self.sh(
            node,
            &format!("python3 -m http.server {port} --bind :: --directory {dir} >/dev/null 2>&1 &"),
        );
        assert!(out.status.success(), "cannot start http.server on {node}");
        let t = Instant::now();
        while !self.serves_http(node, port) {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "{node}:{port} does not answer"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether something answers HTTP on the node's own loopback at `port`.
    fn serves_http(&self, node: &str, port: u16) -> bool {
        self.run(
            node,
            &[
                "curl",
                "-s",
                "-o",
                "/dev/null",
                "--max-time",
                "1",
                &format!("http://127.0.0.1:{port}/"),
            ],
        )
        .status
        .success()
    }

    /// Starts xvsd in the director with this configuration.
    pub fn xvsd(&self, yaml: &str, extra: &[&str]) -> Xvsd {
        self.xvsd_as(&[], yaml, extra)
    }

    /// Starts xvsd in the director under `wrapper` (a command that execs the rest, such as
    /// `setpriv …`), with this configuration.
    pub fn xvsd_as(&self, wrapper: &[&str], yaml: &str, extra: &[&str]) -> Xvsd {
        self.xvsd_in("dir", wrapper, yaml, extra)
    }

    /// Starts xvsd in node `node` (`dir`, or `dir2` of the ha lab).
    pub fn xvsd_on(&self, node: &str, yaml: &str, extra: &[&str]) -> Xvsd {
        self.xvsd_in(node, &[], yaml, extra)
    }

    fn xvsd_in(&self, node: &str, wrapper: &[&str], yaml: &str, extra: &[&str]) -> Xvsd {
        let dir = self.scratch();
        let name = if node == "dir" {
            "xvsd".to_string()
        } else {
            format!("{node}-xvsd")
        };
        let config = dir.join(format!("{name}.yaml"));
        std::fs::write(&config, yaml).expect("write config");
        let socket = dir.join(format!("{name}.sock"));
        let log = dir.join(format!("{name}.log"));
        // A log kept from an earlier run of this node (a restart) is appended to.
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("log file");
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns(node)])
            .args(wrapper)
            .arg(env!("CARGO_BIN_EXE_xvsd"))
            // An empty configuration: none at all (the flags in `extra` say what to run).
            .args(
                (!yaml.is_empty())
                    .then(|| ["--config".into(), config.clone().into_os_string()])
                    .into_iter()
                    .flatten(),
            )
            .arg("--control-socket")
            .arg(&socket)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("start xvsd");
        let x = Xvsd {
            child: Some(child),
            config,
            socket,
            log,
            ns: self.ns(node),
        };
        x.wait_ready();
        x
    }
}

impl Lab {
    /// Starts xvsd with this configuration expecting it to refuse: returns what it said
    /// (standard error), failing the test if it started.
    pub fn xvsd_fails(&self, yaml: &str, extra: &[&str]) -> String {
        self.xvsd_fails_as(&[], yaml, extra)
    }

    /// [`Lab::xvsd_fails`] under `wrapper`.
    pub fn xvsd_fails_as(&self, wrapper: &[&str], yaml: &str, extra: &[&str]) -> String {
        let dir = self.scratch();
        let config = dir.join("refused.yaml");
        std::fs::write(&config, yaml).expect("write config");
        let out = Command::new("timeout")
            .args(["30", "ip", "netns", "exec", &self.ns("dir")])
            .args(wrapper)
            .arg(env!("CARGO_BIN_EXE_xvsd"))
            .args(
                (!yaml.is_empty())
                    .then(|| ["--config".into(), config.clone().into_os_string()])
                    .into_iter()
                    .flatten(),
            )
            .arg("--control-socket")
            .arg(dir.join("refused.sock"))
            .args(extra)
            .output()
            .expect("run xvsd");
        assert!(!out.status.success(), "xvsd started with {extra:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    }
}

/// A stock keepalived (Debian's) running its VRRP part in a node of the lab.
pub struct Keepalived {
    child: Option<Child>,
    /// Its log (keepalived's own, on the console).
    pub log: PathBuf,
    ns: String,
}

impl Lab {
    /// Starts keepalived (VRRP only, in the foreground, logging to a file) in `node` with
    /// this configuration.
    pub fn keepalived(&self, node: &str, conf: &str) -> Keepalived {
        need("keepalived", "keepalived", "the HA tests");
        let dir = self.scratch();
        let file = dir.join(format!("{node}-keepalived.conf"));
        std::fs::write(&file, conf).expect("write keepalived.conf");
        let log = dir.join(format!("{node}-keepalived.log"));
        let pid = |n: &str| dir.join(format!("{node}-{n}.pid"));
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.ns(node),
                "keepalived",
                "-n",
                "-l",
                "-D",
                "-P",
            ])
            .arg("-f")
            .arg(&file)
            .arg("-p")
            .arg(pid("keepalived"))
            .arg("-r")
            .arg(pid("vrrp"))
            .stdout(Stdio::null())
            // keepalived -l logs to standard error.
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("start keepalived");
        Keepalived {
            child: Some(child),
            log,
            ns: self.ns(node),
        }
    }

    /// True if `addr` is on an interface of `node`.
    pub fn has_addr(&self, node: &str, addr: &str) -> bool {
        let out = self.sh(node, "ip -o addr show");
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .any(|w| w.split('/').next() == Some(addr))
    }

    /// Waits up to `limit` for `addr` to be on `node` (`present`) or gone from it; returns
    /// how long it took.
    pub fn wait_addr(&self, node: &str, addr: &str, present: bool, limit: Duration) -> Duration {
        let t = Instant::now();
        while self.has_addr(node, addr) != present {
            assert!(
                t.elapsed() < limit,
                "{addr} still {} {node} after {limit:?}",
                if present { "not on" } else { "on" }
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        t.elapsed()
    }
}

impl Keepalived {
    /// Its log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Stops it cleanly (SIGTERM: a master sends priority 0).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let t = Instant::now();
            while c.try_wait().ok().flatten().is_none() && t.elapsed() < Duration::from_secs(10) {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Kills it (SIGKILL to the parent and its VRRP child at once: nothing more is sent).
    pub fn kill_hard(&mut self) {
        let out = Command::new("ip")
            .args(["netns", "pids", &self.ns])
            .output()
            .expect("ip netns pids");
        let pids: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .filter(|p| {
                std::fs::read_to_string(format!("/proc/{p}/comm"))
                    .is_ok_and(|c| c.trim() == "keepalived")
            })
            .map(str::to_string)
            .collect();
        if !pids.is_empty() {
            let _ = Command::new("kill").arg("-KILL").args(&pids).status();
        }
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Keepalived {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = self.script(&["down"]);
        let _ = std::fs::remove_dir_all(self.scratch_path());
    }
}

/// A running xvsd.
pub struct Xvsd {
    child: Option<Child>,
    /// Its configuration file.
    pub config: PathBuf,
    /// Its control socket.
    pub socket: PathBuf,
    /// Its log file.
    pub log: PathBuf,
    ns: String,
}

impl Xvsd {
    fn wait_ready(&self) {
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(20) {
            if self.socket.exists() && self.try_stats().is_some() {
                // Give the control thread a moment to resolve the real servers' neighbours.
                std::thread::sleep(Duration::from_millis(1500));
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("xvsd did not start:\n{}", self.log_text());
    }

    /// Runs xvsadm against this daemon (bounded to 60 s).
    pub fn adm(&self, args: &[&str]) -> Output {
        self.adm_with_input(args, b"")
    }

    /// Runs xvsadm with `input` on its standard input.
    pub fn adm_with_input(&self, args: &[&str], input: &[u8]) -> Output {
        let exe = xvsadm();
        let mut child = Command::new("timeout")
            .arg("60")
            .arg(&exe)
            .arg("--socket")
            .arg(&self.socket)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", exe.display()));
        let _ = child.stdin.take().expect("stdin").write_all(input);
        child.wait_with_output().expect("xvsadm")
    }

    /// Runs xvsadm and returns its output, failing the test (with the daemon's log) if it
    /// fails.
    pub fn adm_ok(&self, args: &[&str]) -> String {
        let out = self.adm(args);
        assert!(
            out.status.success(),
            "xvsadm {}: {}\n{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr),
            self.log_text()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Sends SIGHUP (reload the configuration file).
    pub fn hangup(&self) {
        let pid = self.child.as_ref().expect("running").id();
        let st = Command::new("kill")
            .args(["-HUP", &pid.to_string()])
            .status()
            .expect("kill");
        assert!(st.success());
    }

    /// The daemon's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn try_stats(&self) -> Option<serde_json::Value> {
        self.try_request(r#"{"v":1,"cmd":"stats"}"#)
    }

    /// Sends one request line to the control socket; the reply, if one came.
    pub fn try_request(&self, line: &str) -> Option<serde_json::Value> {
        let out = Command::new("ip")
            .args([
                "netns", "exec", &self.ns, "socat", "-T", "5", "-t", "5", "-",
            ])
            .arg(format!("UNIX-CONNECT:{}", self.socket.display()))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .and_then(|mut c| {
                c.stdin
                    .take()
                    .expect("stdin")
                    .write_all(format!("{line}\n").as_bytes())?;
                c.wait_with_output()
            })
            .ok()?;
        serde_json::from_slice(&out.stdout).ok()
    }

    /// The daemon's statistics (JSON from the control socket).
    pub fn stats(&self) -> serde_json::Value {
        self.try_stats()
            .unwrap_or_else(|| panic!("no stats from xvsd:\n{}", self.log_text()))
    }

    /// Services, real servers, counters and rates (the `list` request).
    pub fn list(&self) -> serde_json::Value {
        self.try_request(r#"{"v":1,"cmd":"list"}"#)
            .unwrap_or_else(|| panic!("no list from xvsd:\n{}", self.log_text()))
    }

    /// Drops counted under `reason`.
    pub fn drops(&self, reason: &str) -> u64 {
        self.stats()["drops"][reason].as_u64().unwrap_or(0)
    }

    /// Asserts every UMEM frame is accounted for once traffic has stopped: free, or in a fill
    /// ring, or in flight (none, after the wait).
    pub fn assert_frames_balanced(&self) {
        std::thread::sleep(Duration::from_millis(300));
        let s = self.stats();
        for (i, w) in s["workers"].as_array().expect("workers").iter().enumerate() {
            let g = |k: &str| w[k].as_u64().unwrap_or(0);
            let (total, free, waiting) = (g("frames_total"), g("frames_free"), g("frames_waiting"));
            // Frames a closed socket's rings held (its interface left) came back to the pool.
            let in_fill = g("filled") - g("rx") - g("reclaimed_fill");
            let in_tx = g("tx") - g("completed") - g("reclaimed_tx");
            assert_eq!(
                free + in_fill + in_tx + waiting,
                total,
                "worker {i}: frames leaked or double-counted: {w}"
            );
            assert_eq!(in_tx, 0, "worker {i}: transmissions never completed: {w}");
            assert_eq!(
                g("rx"),
                g("tx") + g("dropped") + g("passed") + g("tx_ring_full") + waiting,
                "worker {i}: frames in != frames out: {w}"
            );
        }
    }

    /// The daemon's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Kills the daemon with SIGKILL (a crash: nothing of it runs afterwards).
    pub fn kill_hard(&mut self) {
        let mut child = self.child.take().expect("running");
        let _ = child.kill();
        let _ = child.wait();
    }

    /// One control-socket request, answered (fails the test otherwise).
    pub fn request(&self, line: &str) -> serde_json::Value {
        self.try_request(line)
            .unwrap_or_else(|| panic!("no answer to {line}\n{}", self.log_text()))
    }

    /// Stops the daemon (SIGTERM) and returns its exit status.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        // `ip netns exec` execs xvsd: the child is xvsd itself.
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let t = Instant::now();
        loop {
            if let Some(st) = child.try_wait().expect("wait") {
                return st;
            }
            if t.elapsed() > Duration::from_secs(10) {
                let _ = child.kill();
                panic!("xvsd did not stop on SIGTERM:\n{}", self.log_text());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Xvsd {
    fn drop(&mut self) {
        if self.child.is_some() {
            let _ = self.stop();
        }
    }
}

/// The xvsadm binary (built by `cargo test --workspace`, next to xvsd).
pub fn xvsadm() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_BIN_EXE_xvsd")).with_file_name("xvsadm");
    assert!(
        p.exists(),
        "{} is missing: build it first (cargo build -p xvsadm; `cargo test --workspace` does)",
        p.display()
    );
    p
}

/// `n` bytes of deterministic noise.
pub fn payload(n: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

impl Lab {
    /// `n` long TCP echo streams to `vip:port` from the client, each sending `chunks` chunks
    /// of 8 KiB every 0.2 s and reading the echo meanwhile; prints `{"ok": N, "broken": [..]}`
    /// when all are done. Bounded: every socket times out after 30 s of silence, the whole
    /// after 90 s.
    pub fn streams(&self, vip: &str, port: u16, n: usize, chunks: usize) -> Child {
        let script = r#"
import json, os, socket, sys, threading, time
vip, port, n, chunks = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
results = [None] * n
def one(i):
    data = os.urandom(8192 * chunks)
    try:
        s = socket.create_connection((vip, port), timeout=30)
        got = bytearray()
        def reader():
            while True:
                b = s.recv(65536)
                if not b:
                    break
                got.extend(b)
        r = threading.Thread(target=reader)
        r.start()
        for c in range(chunks):
            s.sendall(data[c * 8192:(c + 1) * 8192])
            time.sleep(0.2)
        s.shutdown(socket.SHUT_WR)
        r.join(40)
        results[i] = bytes(got) == data
    except Exception as e:
        results[i] = False
ts = [threading.Thread(target=one, args=(i,)) for i in range(n)]
for t in ts:
    t.start()
    time.sleep(0.05)
for t in ts:
    t.join(90)
print(json.dumps({"ok": sum(1 for r in results if r), "broken": [i for i, r in enumerate(results) if not r]}))
"#;
        Command::new("timeout")
            .args([
                "120",
                "ip",
                "netns",
                "exec",
                &self.ns("cl"),
                "python3",
                "-c",
                script,
            ])
            .args([vip, &port.to_string(), &n.to_string(), &chunks.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("streams")
    }

    /// Starts BIRD 2 in `node` with this configuration, in the foreground, with its own
    /// control socket.
    pub fn bird(&self, node: &str, conf: &str) -> Bird {
        need("bird", "bird2", "the scale-out tests");
        let dir = self.scratch();
        let file = dir.join(format!("{node}-bird.conf"));
        let log = dir.join(format!("{node}-bird.log"));
        let conf = conf.replace(
            "log syslog all;",
            &format!("log \"{}\" all;", log.display()),
        );
        std::fs::write(&file, conf).expect("write bird.conf");
        let socket = dir.join(format!("{node}-bird.ctl"));
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns(node), "bird", "-f", "-c"])
            .arg(&file)
            .arg("-s")
            .arg(&socket)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start bird");
        Bird {
            child: Some(child),
            log,
            socket,
        }
    }

    /// The next hops of `node`'s route to `prefix` (one for a plain route, several for
    /// ECMP), sorted; empty without a route.
    pub fn next_hops(&self, node: &str, prefix: &str) -> Vec<String> {
        let out = self.run(node, &["ip", "-4", "route", "show", prefix]);
        let text = String::from_utf8_lossy(&out.stdout);
        let words: Vec<&str> = text.split_whitespace().collect();
        let mut hops: Vec<String> = words
            .windows(2)
            .filter(|w| w[0] == "via")
            .map(|w| w[1].to_string())
            .collect();
        hops.sort();
        hops
    }

    /// Waits up to `limit` for `node`'s route to `prefix` to have exactly `hops` as next hops;
    /// returns how long it took.
    pub fn wait_next_hops(
        &self,
        node: &str,
        prefix: &str,
        hops: &[&str],
        limit: Duration,
    ) -> Duration {
        let t = Instant::now();
        loop {
            let now = self.next_hops(node, prefix);
            if now == hops {
                return t.elapsed();
            }
            assert!(
                t.elapsed() < limit,
                "{node}: route to {prefix} via {now:?}, not {hops:?} after {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// How streams ended: (whole, broken).
pub fn streams_result(c: Child) -> (u64, Vec<u64>) {
    let out = c.wait_with_output().expect("streams");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("streams output: {e}: {:?}", out.stdout));
    (
        v["ok"].as_u64().unwrap(),
        v["broken"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap())
            .collect(),
    )
}

/// A BIRD daemon in a lab namespace (killed on drop; the lab's teardown kills whatever is
/// left in its namespaces).
pub struct Bird {
    child: Option<Child>,
    /// Its log.
    pub log: PathBuf,
    /// Its control socket (for birdc -s).
    pub socket: PathBuf,
}

impl Bird {
    /// Its log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Freezes it (SIGSTOP): a director that hangs sends nothing more, not even a BGP close,
    /// so only BFD or the hold timer can tell.
    pub fn freeze(&mut self) {
        if let Some(c) = &self.child {
            let _ = Command::new("kill")
                .args(["-STOP", &c.id().to_string()])
                .status();
        }
    }

    /// What `birdc show protocols` says.
    pub fn protocols(&self) -> String {
        let out = Command::new("birdc")
            .arg("-s")
            .arg(&self.socket)
            .args(["show", "protocols"])
            .output()
            .expect("birdc");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Bird {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // A frozen one too: SIGKILL needs no cooperation.
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
