//! Prometheus text exposition (format 0.0.4) of xvsd's counters, and the small HTTP endpoint
//! that serves it (`--metrics ADDR`, off by default, 127.0.0.1:9469 when given no address).
//! Counters are the raw totals (monotonic, never affected by `xvsadm -Z`).

mod node_ipvs;
mod process;

use crate::director::Director;
use crate::jobs::Job;
use crossbeam_channel::Sender;
use std::fmt::Write as _;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

/// Most scrapes served at once.
const MAX_SCRAPES: usize = 8;
/// How long a client may take to send its request.
const SCRAPE_TIME: Duration = Duration::from_secs(5);
use xvs_core::DropReason;
use xvs_core::service::fmt_addr_port;

/// The default metrics address.
pub const DEFAULT_ADDR: &str = "127.0.0.1:9469";

fn esc(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// The exposition being written.
struct Out(String);

impl Out {
    fn head(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }
    fn val(&mut self, name: &str, labels: &[(&str, &str)], v: u64) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (k, l)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                let _ = write!(self.0, "{k}=\"{}\"", esc(l));
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {v}");
    }
    /// Unlabelled counters: `(name, help, value)` each.
    fn counters(&mut self, rows: &[(&str, &str, u64)]) {
        for &(name, help, v) in rows {
            self.head(name, "counter", help);
            self.val(name, &[], v);
        }
    }
    fn float(&mut self, name: &str, v: f64) {
        let _ = writeln!(self.0, "{name} {v}");
    }
}

/// VRRP instances and connection sync.
fn ha_metrics(o: &mut Out, d: &Director) {
    let v = d.vrrp_status();
    if !v.instances.is_empty() {
        o.head(
            "xvs_vrrp_state",
            "gauge",
            "VRRP instance state: 0 init, 1 backup, 2 master, 3 fault, 4 stop.",
        );
        for i in &v.instances {
            let st = match i.state.as_str() {
                "BACKUP" => 1,
                "MASTER" => 2,
                "FAULT" => 3,
                "STOP" => 4,
                _ => 0,
            };
            o.val("xvs_vrrp_state", &[("vrrp_instance", &i.name)], st);
        }
        o.head(
            "xvs_vrrp_priority",
            "gauge",
            "VRRP priority now (with tracking).",
        );
        for i in &v.instances {
            o.val(
                "xvs_vrrp_priority",
                &[("vrrp_instance", &i.name)],
                u64::from(i.priority),
            );
        }
        o.head(
            "xvs_vrrp_adverts_total",
            "counter",
            "VRRP advertisements, by direction.",
        );
        for i in &v.instances {
            o.val(
                "xvs_vrrp_adverts_total",
                &[("vrrp_instance", &i.name), ("direction", "in")],
                i.adverts_in,
            );
            o.val(
                "xvs_vrrp_adverts_total",
                &[("vrrp_instance", &i.name), ("direction", "out")],
                i.adverts_out,
            );
        }
        o.head(
            "xvs_vrrp_became_master_total",
            "counter",
            "Times the instance became master.",
        );
        for i in &v.instances {
            o.val(
                "xvs_vrrp_became_master_total",
                &[("vrrp_instance", &i.name)],
                i.became_master,
            );
        }
        o.head(
            "xvs_vrrp_rejected_total",
            "counter",
            "VRRP advertisements refused, by reason.",
        );
        for i in &v.instances {
            for (r, n) in &i.rejected {
                o.val(
                    "xvs_vrrp_rejected_total",
                    &[("vrrp_instance", &i.name), ("reason", r)],
                    *n,
                );
            }
        }
    }
    let s = d.daemon_status();
    o.head(
        "xvs_sync_daemon_running",
        "gauge",
        "Connection-sync daemons running, by role.",
    );
    for role in ["master", "backup"] {
        let on = s.daemons.iter().any(|x| x.role == role);
        o.val("xvs_sync_daemon_running", &[("role", role)], u64::from(on));
    }
    o.head(
        "xvs_sync_messages_total",
        "counter",
        "Sync messages, by direction.",
    );
    o.val(
        "xvs_sync_messages_total",
        &[("direction", "sent")],
        s.messages_sent,
    );
    o.val(
        "xvs_sync_messages_total",
        &[("direction", "received")],
        s.messages_received,
    );
    o.head(
        "xvs_sync_conns_total",
        "counter",
        "Synced connections sent, received, installed.",
    );
    o.val("xvs_sync_conns_total", &[("what", "sent")], s.conns_sent);
    o.val(
        "xvs_sync_conns_total",
        &[("what", "received")],
        s.conns_received,
    );
    o.val(
        "xvs_sync_conns_total",
        &[("what", "installed")],
        s.conns_installed,
    );
    o.head(
        "xvs_sync_rejected_total",
        "counter",
        "Sync messages or connections refused, by reason.",
    );
    for (r, n) in &s.rejected {
        o.val("xvs_sync_rejected_total", &[("reason", r)], *n);
    }
}

/// The kernel's AF_XDP drop counters per socket, what the steering program dropped itself,
/// and how each interface is polled.
fn socket_metrics(o: &mut Out, d: &Director) {
    o.head(
        "xvs_xsk_drops_total",
        "counter",
        "Frames the kernel dropped at an AF_XDP socket (XDP_STATISTICS), by reason.",
    );
    for (w, c) in d.shared.io.iter().enumerate() {
        let w = w.to_string();
        for (s, ifname) in c.sockets.iter().zip(&d.shared.ports.names) {
            for (reason, v) in [
                ("rx_ring_full", &s.rx_ring_full),
                ("rx_fill_ring_empty", &s.rx_fill_ring_empty),
                ("rx_dropped", &s.rx_dropped),
                ("rx_invalid_descs", &s.rx_invalid_descs),
                ("tx_invalid_descs", &s.tx_invalid_descs),
                ("tx_ring_empty", &s.tx_ring_empty),
            ] {
                o.val(
                    "xvs_xsk_drops_total",
                    &[("interface", ifname), ("queue", &w), ("reason", reason)],
                    v.load(Relaxed),
                );
            }
        }
    }
    o.head(
        "xvs_xsk_behind",
        "gauge",
        "1 while the queue's worker tells the steering program it is behind.",
    );
    for (w, c) in d.shared.io.iter().enumerate() {
        let w = w.to_string();
        for (s, ifname) in c.sockets.iter().zip(&d.shared.ports.names) {
            o.val(
                "xvs_xsk_behind",
                &[("interface", ifname), ("queue", &w)],
                s.behind.load(Relaxed),
            );
        }
    }
    o.head(
        "xvs_steering_drops_total",
        "counter",
        "Frames the XDP steering program dropped before any worker saw them, by reason.",
    );
    for (st, ifname) in d
        .kernel()
        .steering_status()
        .iter()
        .zip(&d.shared.ports.names)
    {
        let x = st.drops;
        for (reason, v) in [
            ("worker_behind", x.behind),
            ("syn_over_budget", x.syn_over_budget),
        ] {
            o.val(
                "xvs_steering_drops_total",
                &[("interface", ifname), ("reason", reason)],
                v,
            );
        }
    }
    o.head(
        "xvs_steering_ipv6_unparsed_total",
        "counter",
        "IPv6 packets whose extension headers the steering program could not walk (passed to the host).",
    );
    for (st, ifname) in d
        .kernel()
        .steering_status()
        .iter()
        .zip(&d.shared.ports.names)
    {
        o.val(
            "xvs_steering_ipv6_unparsed_total",
            &[("interface", ifname)],
            st.drops.ipv6_unparsed,
        );
    }
    o.head(
        "xvs_polling_info",
        "gauge",
        "How the interface's receive work is polled (1 for the mechanism in use).",
    );
    for p in &d.shared.polling {
        o.val(
            "xvs_polling_info",
            &[("interface", &p.ifname), ("mechanism", p.mechanism.name())],
            1,
        );
    }
}

/// The exposition text.
pub fn render(d: &Director) -> String {
    let mut o = Out(String::new());
    let g = d.shared.stats.global();
    o.head("xvs_up", "gauge", "1 while xvsd runs.");
    o.val("xvs_up", &[], 1);
    o.head(
        "xvs_config_generation",
        "gauge",
        "Generation of the running snapshot.",
    );
    o.val("xvs_config_generation", &[], d.running.generation);
    o.counters(&[
        (
            "xvs_rx_frames_total",
            "Frames the forwarder processed.",
            g.rx_frames,
        ),
        (
            "xvs_tx_frames_total",
            "Frames the forwarder transmitted.",
            g.tx_frames,
        ),
        (
            "xvs_neigh_waits_total",
            "Frames set aside to wait for their next hop's MAC address (each time).",
            g.neigh_waits,
        ),
        (
            "xvs_passed_frames_total",
            "Frames handed to the host stack.",
            g.passed,
        ),
        (
            "xvs_icmp_sent_total",
            "ICMP errors xvs originated.",
            g.icmp_sent,
        ),
        (
            "xvs_conns_created_total",
            "Connections created.",
            g.conns_created,
        ),
        (
            "xvs_conns_evicted_total",
            "Connections evicted from a full table.",
            g.conns_evicted,
        ),
        (
            "xvs_conns_expired_total",
            "Connections expired.",
            g.conns_expired,
        ),
        (
            "xvs_cross_worker_replies_total",
            "Replies handled by another worker than their request.",
            g.cross_worker_replies,
        ),
    ]);
    o.head("xvs_drops_total", "counter", "Frames dropped, by reason.");
    for r in DropReason::ALL {
        o.val(
            "xvs_drops_total",
            &[("reason", r.label())],
            g.drops[*r as usize],
        );
    }
    o.head(
        "xvs_conn_table_entries",
        "gauge",
        "Connection-table entries in use.",
    );
    o.val("xvs_conn_table_entries", &[], d.shared.table.len() as u64);
    o.head(
        "xvs_conn_table_capacity",
        "gauge",
        "Connection-table capacity.",
    );
    o.val(
        "xvs_conn_table_capacity",
        &[],
        d.shared.table.capacity() as u64,
    );
    o.head(
        "xvs_worker_frames_total",
        "counter",
        "AF_XDP frames per worker, by direction.",
    );
    for (i, c) in d.shared.io.iter().enumerate() {
        let w = i.to_string();
        for (dir, v) in [
            ("rx", c.rx.load(Relaxed)),
            ("tx", c.tx.load(Relaxed)),
            ("passed", c.passed.load(Relaxed)),
            ("dropped", c.dropped.load(Relaxed)),
        ] {
            o.val(
                "xvs_worker_frames_total",
                &[("worker", &w), ("kind", dir)],
                v,
            );
        }
    }
    o.head(
        "xvs_worker_drops_total",
        "counter",
        "Frames a worker dropped, by reason (non-zero ones).",
    );
    for i in 0..d.shared.io.len() {
        let w = i.to_string();
        let slot = d.shared.stats.slot(i);
        for r in DropReason::ALL {
            let v = slot.drops[*r as usize].load(Relaxed);
            if v > 0 {
                o.val(
                    "xvs_worker_drops_total",
                    &[("worker", &w), ("reason", r.label())],
                    v,
                );
            }
        }
    }
    socket_metrics(&mut o, d);
    let t = &d.running.services;
    let svc_metrics = [
        (
            "xvs_service_connections_total",
            "counter",
            "Connections scheduled.",
        ),
        (
            "xvs_service_packets_total",
            "counter",
            "Packets, by direction (in: to real servers).",
        ),
        ("xvs_service_bytes_total", "counter", "Bytes, by direction."),
        (
            "xvs_service_connections_per_second",
            "gauge",
            "Connections per second (IPVS estimator).",
        ),
        (
            "xvs_service_packets_per_second",
            "gauge",
            "Packets per second, by direction.",
        ),
        (
            "xvs_service_bytes_per_second",
            "gauge",
            "Bytes per second, by direction.",
        ),
    ];
    let real_metrics = [
        (
            "xvs_real_connections_total",
            "counter",
            "Connections scheduled to the real server.",
        ),
        (
            "xvs_real_packets_total",
            "counter",
            "Packets, by direction.",
        ),
        ("xvs_real_bytes_total", "counter", "Bytes, by direction."),
        (
            "xvs_real_active_connections",
            "gauge",
            "Active connections (ipvsadm's ActiveConn).",
        ),
        (
            "xvs_real_inactive_connections",
            "gauge",
            "Inactive connections (ipvsadm's InActConn).",
        ),
        ("xvs_real_weight", "gauge", "Configured weight."),
        (
            "xvs_real_connections_per_second",
            "gauge",
            "Connections per second (IPVS estimator).",
        ),
        (
            "xvs_real_packets_per_second",
            "gauge",
            "Packets per second, by direction.",
        ),
        (
            "xvs_real_bytes_per_second",
            "gauge",
            "Bytes per second, by direction.",
        ),
    ];
    for (name, kind, help) in svc_metrics {
        o.head(name, kind, help);
        for s in t.services() {
            let key = s.key.to_string();
            let l = [("service", key.as_str())];
            let tot = d.shared.stats.service_totals(t.reals_of(s.id));
            let r = d.accounting.service_rates(&s.key);
            match name {
                "xvs_service_connections_total" => o.val(name, &l, tot.conns),
                "xvs_service_connections_per_second" => o.val(name, &l, r.cps),
                _ => {
                    let (i, x) = match name {
                        "xvs_service_packets_total" => (tot.in_pkts, tot.out_pkts),
                        "xvs_service_bytes_total" => (tot.in_bytes, tot.out_bytes),
                        "xvs_service_packets_per_second" => (r.in_pps, r.out_pps),
                        _ => (r.in_bps, r.out_bps),
                    };
                    o.val(name, &[l[0], ("direction", "in")], i);
                    o.val(name, &[l[0], ("direction", "out")], x);
                }
            }
        }
    }
    o.head(
        "xvs_real_up",
        "gauge",
        "1 while the real server is healthy (or unchecked).",
    );
    for s in t.services() {
        let key = s.key.to_string();
        for r in s.reals.iter().filter_map(|&id| t.real(id)) {
            let real = fmt_addr_port(&r.addr, r.port);
            o.val(
                "xvs_real_up",
                &[("service", key.as_str()), ("real", real.as_str())],
                u64::from(r.up),
            );
        }
    }
    o.head(
        "xvs_health_transitions_total",
        "counter",
        "Health state changes of a checked real server.",
    );
    for ((key, addr, port), n) in d.health.transitions() {
        let (key, real) = (key.to_string(), fmt_addr_port(addr, *port));
        o.val(
            "xvs_health_transitions_total",
            &[("service", key.as_str()), ("real", real.as_str())],
            n,
        );
    }
    o.head(
        "xvs_service_withdrawn",
        "gauge",
        "1 while the service is withdrawn (health quorum not met).",
    );
    for s in t.services() {
        let key = s.key.to_string();
        o.val(
            "xvs_service_withdrawn",
            &[("service", key.as_str())],
            u64::from(s.down),
        );
    }
    for (name, kind, help) in real_metrics {
        o.head(name, kind, help);
        for s in t.services() {
            let key = s.key.to_string();
            for r in s.reals.iter().filter_map(|&id| t.real(id)) {
                let real = fmt_addr_port(&r.addr, r.port);
                let l = [("service", key.as_str()), ("real", real.as_str())];
                let tot = d.shared.stats.real_totals(r.id);
                let rt = d.accounting.real_rates(r.id);
                match name {
                    "xvs_real_connections_total" => o.val(name, &l, tot.conns),
                    "xvs_real_active_connections" => o.val(name, &l, tot.active),
                    "xvs_real_inactive_connections" => o.val(name, &l, tot.inactive),
                    "xvs_real_weight" => o.val(name, &l, u64::from(r.options.weight)),
                    "xvs_real_connections_per_second" => o.val(name, &l, rt.cps),
                    _ => {
                        let (i, x) = match name {
                            "xvs_real_packets_total" => (tot.in_pkts, tot.out_pkts),
                            "xvs_real_bytes_total" => (tot.in_bytes, tot.out_bytes),
                            "xvs_real_packets_per_second" => (rt.in_pps, rt.out_pps),
                            _ => (rt.in_bps, rt.out_bps),
                        };
                        o.val(name, &[l[0], l[1], ("direction", "in")], i);
                        o.val(name, &[l[0], l[1], ("direction", "out")], x);
                    }
                }
            }
        }
    }
    ha_metrics(&mut o, d);
    node_ipvs::render(&mut o, d);
    process::render(&mut o);
    o.0
}

/// The HTTP endpoint: a thread that accepts scrapes and asks the control loop for the text.
pub struct Endpoint;

impl Endpoint {
    /// Listens on `addr` (warning if it is not a loopback address) and serves scrapes.
    pub fn start(addr: SocketAddr, jobs: Sender<Job>) -> Result<Endpoint, String> {
        let listener = TcpListener::bind(addr)
            .map_err(|e| format!("cannot listen for metrics on {addr}: {e}"))?;
        if !addr.ip().is_loopback() {
            tracing::warn!(%addr, "metrics endpoint listens beyond this host");
        }
        tracing::info!(%addr, "Prometheus metrics at http://{addr}/metrics");
        std::thread::Builder::new()
            .name("xvs-metrics".into())
            .spawn(move || serve(&listener, &jobs))
            .map_err(|e| format!("cannot start the metrics thread: {e}"))?;
        Ok(Endpoint)
    }
}

/// Serves scrapes from `listener`: each on a thread of its own (a slow client holds only its
/// own), at most [`MAX_SCRAPES`] at once; the rest are closed at once.
fn serve(listener: &TcpListener, jobs: &Sender<Job>) {
    let busy = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming().flatten() {
        if busy.load(Relaxed) >= MAX_SCRAPES {
            continue;
        }
        busy.fetch_add(1, Relaxed);
        let (jobs, done) = (jobs.clone(), Arc::clone(&busy));
        let spawned = std::thread::Builder::new()
            .name("xvs-scrape".into())
            .spawn(move || {
                if let Err(e) = scrape(&stream, &jobs) {
                    tracing::debug!(error = %e, "metrics client");
                }
                done.fetch_sub(1, Relaxed);
            });
        if spawned.is_err() {
            busy.fetch_sub(1, Relaxed);
        }
    }
}

fn scrape(stream: &TcpStream, jobs: &Sender<Job>) -> std::io::Result<()> {
    // The whole request (line and headers) within SCRAPE_TIME, however slowly it trickles.
    let deadline = Instant::now() + SCRAPE_TIME;
    let mut head = Vec::new();
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && !head.windows(2).any(|w| w == b"\n\n") {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || head.len() > 16 * 1024 {
            return Ok(());
        }
        stream.set_read_timeout(Some(left))?;
        let n = match (&mut &*stream).read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            Err(e) => return Err(e),
        };
        head.extend_from_slice(&chunk[..n]);
    }
    stream.set_write_timeout(Some(Duration::from_secs(2)))?;
    let text = String::from_utf8_lossy(&head);
    let first = text.lines().next().unwrap_or("");
    let mut parts = first.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    // The path without a query (`/metrics?name[]=…`, as Prometheus may add).
    let path = target.split('?').next().unwrap_or("");
    let known = path == "/metrics" || path == "/";
    let (status, ctype, body) = match (method, known) {
        ("GET" | "HEAD", true) => {
            let (tx, rx) = crossbeam_channel::bounded(1);
            let _ = jobs.send(Job::Scrape(tx));
            match rx.recv_timeout(Duration::from_secs(10)) {
                Ok(t) => ("200 OK", "text/plain; version=0.0.4; charset=utf-8", t),
                Err(_) => (
                    "503 Service Unavailable",
                    "text/plain",
                    "xvsd did not answer in time\n".to_string(),
                ),
            }
        }
        (_, true) => (
            "405 Method Not Allowed",
            "text/plain",
            "GET or HEAD\n".to_string(),
        ),
        _ => ("404 Not Found", "text/plain", "try /metrics\n".to_string()),
    };
    let mut w = stream;
    write!(
        w,
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    if method != "HEAD" {
        w.write_all(body.as_bytes())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A metrics endpoint on a loopback port whose control loop answers "xvs_up 1".
    fn endpoint() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = crossbeam_channel::bounded::<Job>(8);
        std::thread::spawn(move || serve(&listener, &tx));
        std::thread::spawn(move || {
            for job in rx {
                if let Job::Scrape(reply) = job {
                    let _ = reply.send("xvs_up 1\n".into());
                }
            }
        });
        addr
    }

    fn ask(addr: SocketAddr, request: &str) -> String {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(request.as_bytes()).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }

    #[test]
    fn prometheus_requests_are_answered_as_http_wants() {
        let addr = endpoint();
        let r = ask(
            addr,
            "GET /metrics?name[]=xvs_up HTTP/1.1\r\nHost: x\r\n\r\n",
        );
        assert!(
            r.starts_with("HTTP/1.1 200 OK") && r.ends_with("xvs_up 1\n"),
            "{r}"
        );
        let r = ask(addr, "HEAD /metrics HTTP/1.1\r\n\r\n");
        assert!(
            r.starts_with("HTTP/1.1 200 OK") && r.ends_with("\r\n\r\n"),
            "no body: {r}"
        );
        assert!(r.contains("Content-Length: 9"), "{r}");
        let r = ask(addr, "POST /metrics HTTP/1.1\r\n\r\n");
        assert!(r.starts_with("HTTP/1.1 405"), "{r}");
        let r = ask(addr, "GET /other HTTP/1.1\r\n\r\n");
        assert!(r.starts_with("HTTP/1.1 404"), "{r}");
    }

    #[test]
    fn a_slow_client_does_not_hold_up_a_scrape() {
        let addr = endpoint();
        let mut slow = TcpStream::connect(addr).unwrap();
        slow.write_all(b"GET /met").unwrap();
        let t = Instant::now();
        let r = ask(addr, "GET /metrics HTTP/1.1\r\n\r\n");
        assert!(r.starts_with("HTTP/1.1 200 OK"), "{r}");
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "answered beside the slow one"
        );
        drop(slow);
    }
}
