//! The bench topology: four network namespaces joined by veth pairs, every interface with as
//! many queues as the most workers any contender uses.
//!
//! ```text
//!  gen                 dir (the director)                      s1, s2 (sinks)
//!  g0 198.18.0.1 ──── d0 198.18.0.2   VIP 198.18.0.10
//!     2001:db8::1        2001:db8::2   VIP 2001:db8::10
//!                      d1 198.18.1.1 ──────────────────────── e0 198.18.1.11  (s1)
//!                         2001:db8:1::1                          2001:db8:1::11
//!                      d2 198.18.2.1 ──────────────────────── e0 198.18.2.12  (s2)
//!                         2001:db8:2::1                          2001:db8:2::12
//! ```
//!
//! Clients are 198.19.0.0/16 and 2001:db8:ff::/48 behind the generator. The namespaces are
//! deleted when the topology is dropped, on every exit path.

use std::process::{Command, Output};

/// The virtual service address.
pub const VIP: &str = "198.18.0.10";
/// The sinks' addresses (the real servers).
pub const SINKS: [&str; 2] = ["198.18.1.11", "198.18.2.12"];
/// The IPv6 virtual service address.
pub const VIP6: &str = "2001:db8::10";
/// The sinks' IPv6 addresses.
pub const SINKS6: [&str; 2] = ["2001:db8:1::11", "2001:db8:2::12"];
/// The IPv6 clients' first address.
pub const CLIENTS6: &str = "2001:db8:ff::";
/// The director's interfaces towards the sinks, in order.
pub const DIR_OUT: [&str; 2] = ["d1", "d2"];

/// The namespaces and what the contenders need to know of them.
pub struct Topology {
    /// Name prefix (unique per run).
    pub prefix: String,
    /// MAC of the director's ingress interface d0.
    pub d0_mac: String,
    /// MACs of the sinks' interfaces.
    pub sink_macs: [String; 2],
    /// d0's NAPI threads (once [`Topology::pin_ingress`] made them).
    pub ingress_threads: Vec<u32>,
}

/// Runs a command, failing with its output if it fails.
pub fn run(args: &[&str]) -> Result<Output, String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| format!("cannot run {}: {e}", args[0]))?;
    if !out.status.success() {
        return Err(format!(
            "`{}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(out)
}

impl Topology {
    /// The namespace called `role` (gen, dir, s1, s2).
    pub fn ns(&self, role: &str) -> String {
        format!("{}{role}", self.prefix)
    }

    /// Runs `args` inside namespace `role`.
    pub fn exec(&self, role: &str, args: &[&str]) -> Result<Output, String> {
        let ns = self.ns(role);
        let mut all = vec!["ip", "netns", "exec", ns.as_str()];
        all.extend_from_slice(args);
        run(&all)
    }

    /// Runs a shell line inside namespace `role`.
    pub fn sh(&self, role: &str, line: &str) -> Result<Output, String> {
        self.exec(role, &["sh", "-c", line])
    }

    /// Builds the namespaces with `queues` queues per interface.
    pub fn build(queues: u32) -> Result<Topology, String> {
        let prefix = format!("xb{}", std::process::id());
        let mut t = Topology {
            prefix,
            d0_mac: String::new(),
            sink_macs: [String::new(), String::new()],
            ingress_threads: Vec::new(),
        };
        // From here on, dropping `t` removes whatever was made.
        for role in ["gen", "dir", "s1", "s2"] {
            run(&["ip", "netns", "add", &t.ns(role)])?;
        }
        let q = queues.to_string();
        let pairs = [
            ("gen", "g0", "dir", "d0"),
            ("dir", "d1", "s1", "e0"),
            ("dir", "d2", "s2", "e0"),
        ];
        for (a, ia, b, ib) in pairs {
            let (na, nb) = (t.ns(a), t.ns(b));
            run(&[
                "ip",
                "link",
                "add",
                ia,
                "netns",
                &na,
                "numtxqueues",
                &q,
                "numrxqueues",
                &q,
                "type",
                "veth",
                "peer",
                "name",
                ib,
                "netns",
                &nb,
                "numtxqueues",
                &q,
                "numrxqueues",
                &q,
            ])?;
        }
        let setup = [
            (
                "gen",
                "ip link set lo up; ip link set g0 up; ip addr add 198.18.0.1/24 dev g0; \
                 ip -6 addr add 2001:db8::1/64 dev g0 nodad",
            ),
            (
                "dir",
                "ip link set lo up; for i in d0 d1 d2; do ip link set $i up; done; \
                 ip addr add 198.18.0.2/24 dev d0; ip addr add 198.18.1.1/24 dev d1; \
                 ip addr add 198.18.2.1/24 dev d2; \
                 ip -6 addr add 2001:db8::2/64 dev d0 nodad; \
                 ip -6 addr add 2001:db8:1::1/64 dev d1 nodad; \
                 ip -6 addr add 2001:db8:2::1/64 dev d2 nodad; \
                 ip route add 198.19.0.0/16 via 198.18.0.1; \
                 ip -6 route add 2001:db8:ff::/48 via 2001:db8::1; \
                 sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 \
                   net.ipv4.conf.default.rp_filter=0 net.ipv4.conf.d0.rp_filter=0 \
                   net.ipv4.fib_multipath_hash_policy=1 net.ipv6.conf.all.forwarding=1 \
                   net.ipv6.fib_multipath_hash_policy=1",
            ),
            (
                "s1",
                "ip link set lo up; ip link set e0 up; ip addr add 198.18.1.11/24 dev e0; \
                 ip -6 addr add 2001:db8:1::11/64 dev e0 nodad; \
                 ip route add default via 198.18.1.1; ip -6 route add default via 2001:db8:1::1",
            ),
            (
                "s2",
                "ip link set lo up; ip link set e0 up; ip addr add 198.18.2.12/24 dev e0; \
                 ip -6 addr add 2001:db8:2::12/64 dev e0 nodad; \
                 ip route add default via 198.18.2.1; ip -6 route add default via 2001:db8:2::1",
            ),
        ];
        for (role, line) in setup {
            t.sh(role, line)?;
        }
        let mac = |role: &str, ifname: &str| -> Result<String, String> {
            let out = t.exec(role, &["cat", &format!("/sys/class/net/{ifname}/address")])?;
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        };
        let d0_mac = mac("dir", "d0")?;
        let sink_macs = [mac("s1", "e0")?, mac("s2", "e0")?];
        // Static neighbours both ways: no contender waits for ARP, none loses frames to it.
        let g0_mac = mac("gen", "g0")?;
        let out_macs = [mac("dir", "d1")?, mac("dir", "d2")?];
        t.d0_mac = d0_mac;
        t.sink_macs = sink_macs;
        t.sh(
            "dir",
            &format!(
                "ip neigh replace 198.18.0.1 lladdr {g0_mac} dev d0 nud permanent; \
                 ip neigh replace {} lladdr {} dev d1 nud permanent; \
                 ip neigh replace {} lladdr {} dev d2 nud permanent; \
                 ip -6 neigh replace 2001:db8::1 lladdr {g0_mac} dev d0 nud permanent; \
                 ip -6 neigh replace {} lladdr {} dev d1 nud permanent; \
                 ip -6 neigh replace {} lladdr {} dev d2 nud permanent",
                SINKS[0],
                t.sink_macs[0],
                SINKS[1],
                t.sink_macs[1],
                SINKS6[0],
                t.sink_macs[0],
                SINKS6[1],
                t.sink_macs[1]
            ),
        )?;
        let d0_mac = t.d0_mac.clone();
        for ((role, gw), dmac) in [("s1", "2001:db8:1::1"), ("s2", "2001:db8:2::1")]
            .into_iter()
            .zip(out_macs)
        {
            t.sh(
                role,
                &format!("ip -6 neigh replace {gw} lladdr {dmac} dev e0 nud permanent"),
            )?;
        }
        t.sh(
            "gen",
            &format!("ip -6 neigh replace 2001:db8::2 lladdr {d0_mac} dev g0 nud permanent"),
        )?;
        Ok(t)
    }

    /// Runs d0's receive processing (whatever the contender does with a frame first: the
    /// kernel's stack, or the XDP program and the copy into xvsd's UMEM) on the director's
    /// cores, as a NIC's interrupts would, instead of on the generator's core, where veth
    /// would run it: threaded NAPI (GRO on gives veth its NAPI instances), each queue's thread
    /// pinned to `cores[queue % cores.len()]`, at real-time priority until
    /// [`Topology::set_ingress_priority`] says otherwise.
    pub fn pin_ingress(&mut self, cores: &[usize]) -> Result<(), String> {
        // Threads of other namespaces' d0, if any, were there before ours.
        let before = napi_threads("d0");
        // veth hands a frame to its peer's NAPI only if GRO may take it, which needs the
        // sender's TSO off; otherwise the kernel contenders' frames would bypass it.
        self.sh("gen", "ethtool -K g0 tso off gso off >/dev/null")?;
        self.sh(
            "dir",
            "ethtool -K d0 gro on >/dev/null && echo 1 > /sys/class/net/d0/threaded",
        )?;
        let mut threads: Vec<(u32, u64)> = napi_threads("d0")
            .into_iter()
            .filter(|t| !before.contains(t))
            .collect();
        if threads.is_empty() {
            return Err("d0 has no NAPI threads after `echo 1 > threaded`".into());
        }
        // NAPI ids grow with the queue index.
        threads.sort_by_key(|(_, id)| *id);
        for (i, (pid, _)) in threads.iter().enumerate() {
            let core = cores[i % cores.len()];
            run(&["taskset", "-pc", &core.to_string(), &pid.to_string()])?;
        }
        self.ingress_threads = threads.iter().map(|(pid, _)| *pid).collect();
        self.set_ingress_priority(Placement::RealTime)
    }

    /// The priority of d0's NAPI threads for the contenders that follow.
    pub fn set_ingress_priority(&self, p: Placement) -> Result<(), String> {
        for pid in &self.ingress_threads {
            let pid = pid.to_string();
            match p {
                // The thread preempts whatever runs on its core the moment a frame arrives,
                // as a NIC's interrupt and softirq do.
                Placement::RealTime => run(&["chrt", "-f", "-p", "1", &pid])?,
                // A normal thread: the scheduler shares the core with it.
                Placement::Normal => run(&["chrt", "-o", "-p", "0", &pid])?,
            };
        }
        Ok(())
    }
}

/// How the director's ingress receive thread is scheduled on the director's core.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Placement {
    /// SCHED_FIFO 1, as a NIC's interrupt would preempt.
    RealTime,
    /// SCHED_OTHER.
    Normal,
}

impl Placement {
    /// Its name in tables and options.
    pub fn name(self) -> &'static str {
        match self {
            Placement::RealTime => "rt",
            Placement::Normal => "normal",
        }
    }

    /// In words.
    pub fn describe(self) -> &'static str {
        match self {
            Placement::RealTime => "receive thread at real-time priority (SCHED_FIFO 1)",
            Placement::Normal => "receive thread at normal priority (SCHED_OTHER)",
        }
    }
}

/// The `napi/IF-ID` kernel threads: (pid, NAPI id).
fn napi_threads(ifname: &str) -> Vec<(u32, u64)> {
    let prefix = format!("napi/{ifname}-");
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(comm) = std::fs::read_to_string(format!("/proc/{pid}/comm")) else {
            continue;
        };
        if let Some(id) = comm.trim().strip_prefix(&prefix) {
            out.push((pid, id.parse().unwrap_or(0)));
        }
    }
    out
}

impl Drop for Topology {
    fn drop(&mut self) {
        for role in ["gen", "dir", "s1", "s2"] {
            let _ = run(&["ip", "netns", "del", &self.ns(role)]);
        }
    }
}
