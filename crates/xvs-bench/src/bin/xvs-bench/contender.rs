//! The contenders: how each one is set up on the director namespace and torn down again.

use crate::topology::{DIR_OUT, SINKS, SINKS6, Topology, VIP, VIP6};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A way of getting the generator's packets to the sinks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Kernel IPv4 forwarding: a multipath route for the VIP, no load balancing.
    KernelForward,
    /// nftables DNAT with `numgen inc mod 2`.
    NftDnat,
    /// Kernel IPVS, direct routing.
    IpvsDr,
    /// Kernel IPVS, NAT.
    IpvsNat,
    /// xvsd `--forward-only`: AF_XDP in, MAC rewrite, AF_XDP out.
    XvsForwardOnly,
    /// xvsd with a service in this mode, this many workers.
    Xvs(Method, u32),
}

/// xvs forwarding methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Direct routing.
    Dr,
    /// NAT.
    Nat,
    /// IPIP tunnel.
    Tun,
    /// FullNAT.
    FullNat,
}

impl Method {
    fn name(self) -> &'static str {
        match self {
            Method::Dr => "dr",
            Method::Nat => "nat",
            Method::Tun => "tun",
            Method::FullNat => "fullnat",
        }
    }
}

impl Kind {
    /// Every contender, in table order.
    pub fn all() -> Vec<Kind> {
        let mut v = vec![
            Kind::KernelForward,
            Kind::NftDnat,
            Kind::IpvsDr,
            Kind::IpvsNat,
            Kind::XvsForwardOnly,
        ];
        for workers in [1, 2] {
            for m in [Method::Dr, Method::Nat, Method::Tun, Method::FullNat] {
                v.push(Kind::Xvs(m, workers));
            }
        }
        v
    }

    /// Short name (for `--only` and the JSON).
    pub fn id(self) -> String {
        match self {
            Kind::KernelForward => "kernel-fwd".into(),
            Kind::NftDnat => "nft-dnat".into(),
            Kind::IpvsDr => "ipvs-dr".into(),
            Kind::IpvsNat => "ipvs-nat".into(),
            Kind::XvsForwardOnly => "xvs-fwd-only".into(),
            Kind::Xvs(m, w) => format!("xvs-{}-{w}w", m.name()),
        }
    }

    /// What the table calls it.
    pub fn label(self) -> String {
        match self {
            Kind::KernelForward => "kernel forwarding".into(),
            Kind::NftDnat => "nftables DNAT (numgen)".into(),
            Kind::IpvsDr => "kernel IPVS DR".into(),
            Kind::IpvsNat => "kernel IPVS NAT".into(),
            Kind::XvsForwardOnly => "xvs forward-only".into(),
            Kind::Xvs(m, w) => format!(
                "xvs {} {w} worker{}",
                m.name().to_uppercase().replace("FULLNAT", "FullNAT"),
                if w == 1 { "" } else { "s" }
            ),
        }
    }

    /// Director workers (queues the generator must spread over).
    pub fn workers(self) -> u32 {
        match self {
            Kind::Xvs(_, w) => w,
            _ => 1,
        }
    }

    /// True for the kernel's own paths.
    pub fn is_kernel(self) -> bool {
        matches!(
            self,
            Kind::KernelForward | Kind::NftDnat | Kind::IpvsDr | Kind::IpvsNat
        )
    }
}

/// Why a contender does not run here, if it does not: IPVS needs the `ip_vs` module.
pub fn unavailable(kind: Kind, t: &Topology) -> Option<String> {
    match kind {
        Kind::IpvsDr | Kind::IpvsNat => {
            let _ = Command::new("modprobe")
                .args(["-q", "ip_vs"])
                .stderr(Stdio::null())
                .status();
            if t.exec("dir", &["test", "-e", "/proc/net/ip_vs"]).is_err() {
                return Some("not available on this kernel (no ip_vs module)".into());
            }
            if t.exec("dir", &["ipvsadm", "-v"]).is_err() {
                return Some("ipvsadm is not installed".into());
            }
            None
        }
        _ => None,
    }
}

/// A contender while it runs; `stop` undoes its set-up.
pub struct Running {
    kind: Kind,
    xvsd: Option<Child>,
    workdir: PathBuf,
}

/// The xvsd configuration for `method`: UDP and TCP port 80 on the IPv4 and the IPv6 VIP,
/// both sinks as real servers.
fn xvs_config(method: Method, workers: u32) -> String {
    let mut c = format!("interfaces: [d0, d1, d2]\nqueues: {workers}\nservices:\n");
    for (vip, sinks, laddrs) in [
        (VIP, SINKS, "[198.18.1.100, 198.18.2.100]"),
        (VIP6, SINKS6, "[\"2001:db8:1::100\", \"2001:db8:2::100\"]"),
    ] {
        for proto in ["udp", "tcp"] {
            c.push_str(&format!(
                "  - proto: {proto}\n    vip: \"{vip}\"\n    port: 80\n    scheduler: rr\n"
            ));
            if method == Method::FullNat {
                c.push_str(&format!("    local_addrs: {laddrs}\n"));
            }
            c.push_str("    reals:\n");
            for sink in sinks {
                c.push_str(&format!(
                    "      - {{ addr: \"{sink}\", port: 80, method: {} }}\n",
                    method.name()
                ));
            }
        }
    }
    c
}

/// Sets up `kind` on the director. `dir_cores` are the cores xvsd's workers take, in order.
pub fn start(
    kind: Kind,
    t: &Topology,
    xvsd: &Path,
    workdir: &Path,
    dir_cores: &[usize],
    table_size: usize,
    xvsd_args: &[&str],
) -> Result<Running, String> {
    let mut r = Running {
        kind,
        xvsd: None,
        workdir: workdir.to_path_buf(),
    };
    match kind {
        Kind::KernelForward => {
            t.sh(
                "dir",
                &format!(
                    "ip route replace {VIP}/32 nexthop via {} dev {} nexthop via {} dev {}; \
                     ip -6 route replace {VIP6}/128 nexthop via {} dev {} nexthop via {} dev {}",
                    SINKS[0],
                    DIR_OUT[0],
                    SINKS[1],
                    DIR_OUT[1],
                    SINKS6[0],
                    DIR_OUT[0],
                    SINKS6[1],
                    DIR_OUT[1]
                ),
            )?;
        }
        Kind::NftDnat => {
            t.sh(
                "dir",
                &format!(
                    "nft -f - <<'EOF'\n\
                     table ip xvsbench {{\n  chain pre {{\n    type nat hook prerouting priority -100;\n    ip daddr {VIP} dnat to numgen inc mod 2 map {{ 0 : {}, 1 : {} }}\n  }}\n}}\n\
                     table ip6 xvsbench6 {{\n  chain pre {{\n    type nat hook prerouting priority -100;\n    ip6 daddr {VIP6} dnat to numgen inc mod 2 map {{ 0 : {}, 1 : {} }}\n  }}\n}}\nEOF",
                    SINKS[0], SINKS[1], SINKS6[0], SINKS6[1]
                ),
            )?;
        }
        Kind::IpvsDr | Kind::IpvsNat => {
            let flag = if kind == Kind::IpvsDr { "-g" } else { "-m" };
            let mut line = format!(
                "ip addr add {VIP}/32 dev d0; ip -6 addr add {VIP6}/128 dev d0 nodad; \
                 sysctl -qw net.ipv4.vs.conntrack=0 2>/dev/null; "
            );
            for proto in ["-u", "-t"] {
                line.push_str(&format!("ipvsadm -A {proto} {VIP}:80 -s rr; "));
                line.push_str(&format!("ipvsadm -A {proto} [{VIP6}]:80 -s rr; "));
                for s in SINKS {
                    line.push_str(&format!("ipvsadm -a {proto} {VIP}:80 -r {s}:80 {flag}; "));
                }
                for s in SINKS6 {
                    line.push_str(&format!(
                        "ipvsadm -a {proto} [{VIP6}]:80 -r [{s}]:80 {flag}; "
                    ));
                }
            }
            t.sh("dir", &line)?;
        }
        Kind::XvsForwardOnly | Kind::Xvs(..) => {
            let (config, workers, fwd) = match kind {
                Kind::Xvs(m, w) => (xvs_config(m, w), w, None),
                _ => (
                    xvs_config(Method::Dr, 1),
                    1,
                    Some(format!(
                        "{}={},{}={}",
                        DIR_OUT[0], t.sink_macs[0], DIR_OUT[1], t.sink_macs[1]
                    )),
                ),
            };
            let path = workdir.join("xvsd.yaml");
            let sock = workdir.join("xvsd.sock");
            let _ = std::fs::remove_file(&sock);
            std::fs::File::create(&path)
                .and_then(|mut f| f.write_all(config.as_bytes()))
                .map_err(|e| format!("{}: {e}", path.display()))?;
            let cores: Vec<String> = dir_cores
                .iter()
                .take(workers as usize)
                .map(ToString::to_string)
                .collect();
            let log = std::fs::File::create(workdir.join(format!("{}.log", kind.id())))
                .map_err(|e| format!("xvsd log: {e}"))?;
            let mut cmd = Command::new("ip");
            cmd.args(["netns", "exec", &t.ns("dir")])
                .arg(xvsd)
                .arg("--config")
                .arg(&path)
                .arg("--control-socket")
                .arg(&sock)
                .args(["--cores", &cores.join(",")])
                .args(["--conn-table-size", &table_size.to_string()])
                .args(["--log-level", "warn"])
                .args(xvsd_args);
            if let Some(f) = &fwd {
                cmd.args(["--forward-only", f]);
            }
            let child = cmd
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .map_err(|e| format!("cannot start {}: {e}", xvsd.display()))?;
            r.xvsd = Some(child);
            // Ready once the control socket exists (the workers are running by then).
            let deadline = Instant::now() + Duration::from_secs(20);
            while !sock.exists() {
                if let Some(c) = r.xvsd.as_mut() {
                    if let Ok(Some(st)) = c.try_wait() {
                        let log =
                            std::fs::read_to_string(workdir.join(format!("{}.log", kind.id())))
                                .unwrap_or_default();
                        return Err(format!("xvsd exited ({st}): {}", log.trim()));
                    }
                }
                if Instant::now() > deadline {
                    return Err("xvsd did not open its control socket within 20 s".into());
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
    Ok(r)
}

impl Running {
    /// xvsd's process id, if the contender is xvsd (`ip netns exec` execs it in place).
    pub fn pid(&self) -> Option<u32> {
        self.xvsd.as_ref().map(Child::id)
    }

    /// xvsd's control socket, if the contender is xvsd.
    pub fn control_socket(&self) -> Option<PathBuf> {
        self.xvsd.as_ref().map(|_| self.workdir.join("xvsd.sock"))
    }

    /// Undoes the set-up.
    pub fn stop(mut self, t: &Topology) -> Result<(), String> {
        self.teardown(t)
    }

    fn teardown(&mut self, t: &Topology) -> Result<(), String> {
        match self.kind {
            Kind::KernelForward => {
                t.sh(
                    "dir",
                    &format!("ip route del {VIP}/32; ip -6 route del {VIP6}/128"),
                )?;
            }
            Kind::NftDnat => {
                t.sh(
                    "dir",
                    "nft delete table ip xvsbench; nft delete table ip6 xvsbench6",
                )?;
            }
            Kind::IpvsDr | Kind::IpvsNat => {
                t.sh(
                    "dir",
                    &format!(
                        "ipvsadm -C; ip addr del {VIP}/32 dev d0; ip -6 addr del {VIP6}/128 dev d0"
                    ),
                )?;
            }
            Kind::XvsForwardOnly | Kind::Xvs(..) => {
                if let Some(mut c) = self.xvsd.take() {
                    // xvsd's parent is `ip netns exec`, which execs it: the pid is xvsd's.
                    let _ = Command::new("kill").arg(c.id().to_string()).status();
                    let deadline = Instant::now() + Duration::from_secs(10);
                    loop {
                        match c.try_wait() {
                            Ok(Some(_)) => break,
                            _ if Instant::now() > deadline => {
                                let _ = c.kill();
                                let _ = c.wait();
                                return Err("xvsd did not stop within 10 s of SIGTERM".into());
                            }
                            _ => std::thread::sleep(Duration::from_millis(50)),
                        }
                    }
                }
                let _ = std::fs::remove_file(self.workdir.join("xvsd.sock"));
            }
        }
        Ok(())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut c) = self.xvsd.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
