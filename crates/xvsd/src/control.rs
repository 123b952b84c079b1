//! The control socket: a Unix stream socket (mode 0600) answering one JSON request per line.
//! Protocol version 1; this first version answers `{"v":1,"cmd":"stats"}` and
//! `{"v":1,"cmd":"ping"}`.

use crate::daemon::Shared;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;
use xvs_core::DropReason;

/// Protocol version.
pub const VERSION: u32 = 1;

/// The listening socket.
pub struct Server {
    listener: UnixListener,
    path: PathBuf,
}

impl Server {
    /// Binds `path` (creating its directory, replacing a stale socket), mode 0600.
    pub fn bind(path: &Path) -> Result<Server, String> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        if path.exists() {
            if UnixStream::connect(path).is_ok() {
                return Err(format!(
                    "{} is in use by a running xvsd; give this one --control-socket PATH",
                    path.display()
                ));
            }
            let _ = std::fs::remove_file(path);
        }
        let listener = UnixListener::bind(path)
            .map_err(|e| format!("cannot listen on {}: {e}", path.display()))?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| format!("cannot set the mode of {}: {e}", path.display()))?;
        listener.set_nonblocking(true).map_err(|e| e.to_string())?;
        Ok(Server {
            listener,
            path: path.to_path_buf(),
        })
    }

    /// Answers every pending connection.
    pub fn serve(&mut self, shared: &Shared) {
        while let Ok((stream, _)) = self.listener.accept() {
            if let Err(e) = answer(&stream, shared) {
                tracing::debug!(error = %e, "control client");
            }
        }
    }

    /// Removes the socket file.
    pub fn close(self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn answer(stream: &UnixStream, shared: &Shared) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line)?;
    let reply = match serde_json::from_str::<serde_json::Value>(&line) {
        Ok(req) => match req.get("cmd").and_then(|c| c.as_str()) {
            Some("ping") => serde_json::json!({"v": VERSION, "ok": true}),
            Some("stats") => stats(shared),
            Some(other) => {
                serde_json::json!({"v": VERSION, "ok": false, "error": format!("unknown command '{other}'")})
            }
            None => serde_json::json!({"v": VERSION, "ok": false, "error": "missing \"cmd\""}),
        },
        Err(e) => {
            serde_json::json!({"v": VERSION, "ok": false, "error": format!("bad request: {e}")})
        }
    };
    let mut w = stream;
    writeln!(w, "{reply}")
}

fn stats(shared: &Shared) -> serde_json::Value {
    let g = shared.stats.global();
    let drops: serde_json::Map<String, serde_json::Value> = DropReason::ALL
        .iter()
        .map(|r| (r.label().to_string(), g.drops[*r as usize].into()))
        .collect();
    let workers: Vec<serde_json::Value> = shared
        .io
        .iter()
        .map(|c| {
            serde_json::json!({
                "rx": c.rx.load(Relaxed), "tx": c.tx.load(Relaxed), "completed": c.completed.load(Relaxed),
                "filled": c.filled.load(Relaxed), "dropped": c.dropped.load(Relaxed),
                "passed": c.passed.load(Relaxed), "tx_ring_full": c.tx_ring_full.load(Relaxed),
                "frames_free": c.free.load(Relaxed), "frames_total": c.total.load(Relaxed),
            })
        })
        .collect();
    let steering: Vec<serde_json::Value> = shared
        .steering
        .iter()
        .zip(&shared.ports.names)
        .map(|(s, n)| {
            let [vip, laddr, rip] = s.steered();
            serde_json::json!({"interface": n, "mode": s.mode_name(), "to_vip": vip, "to_local_addr": laddr, "from_real": rip})
        })
        .collect();
    let snap = shared.snapshot.load();
    let services: Vec<serde_json::Value> = snap
        .services
        .services()
        .map(|svc| {
            let t = shared.stats.service_totals(snap.services.reals_of(svc.id));
            let reals: Vec<serde_json::Value> = svc
                .reals
                .iter()
                .filter_map(|&r| snap.services.real(r))
                .map(|r| {
                    let rt = shared.stats.real_totals(r.id);
                    serde_json::json!({
                        "addr": r.addr.to_string(), "port": r.port, "method": r.options.method.forward_name(),
                        "weight": r.options.weight, "conns": rt.conns, "active": rt.active, "inactive": rt.inactive,
                        "in_pkts": rt.in_pkts, "out_pkts": rt.out_pkts, "in_bytes": rt.in_bytes, "out_bytes": rt.out_bytes,
                    })
                })
                .collect();
            serde_json::json!({"service": svc.key.to_string(), "scheduler": svc.options.scheduler,
                "conns": t.conns, "in_pkts": t.in_pkts, "out_pkts": t.out_pkts, "reals": reals})
        })
        .collect();
    serde_json::json!({
        "v": VERSION, "ok": true,
        "uptime_ms": shared.clock.elapsed().as_millis() as u64,
        "rx_frames": g.rx_frames, "tx_frames": g.tx_frames, "passed": g.passed, "icmp_sent": g.icmp_sent,
        "conns_created": g.conns_created, "conns_evicted": g.conns_evicted, "conns_expired": g.conns_expired,
        "cross_worker_replies": g.cross_worker_replies,
        "conn_table": {"entries": shared.table.len(), "capacity": shared.table.capacity()},
        "drops": drops, "workers": workers, "steering": steering, "services": services,
    })
}
