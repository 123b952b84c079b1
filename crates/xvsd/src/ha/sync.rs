//! The connection-sync daemons (IPVS's protocol, message version 1): a master thread that
//! packs what the control loop's sweep exports into messages of at most `maxlen` bytes and
//! sends them (a partly filled one within a second), and a backup thread that receives,
//! checks (length, sync id, version) and hands the connections to the control loop, which
//! installs them. Everything refused is counted by reason.

use crossbeam_channel::{Receiver, Sender, TrySendError};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use xvs_control::proto::{DaemonReply, DaemonStatus};
use xvs_wire::ipvs_sync::{self, MessageBuilder, SyncConn, SyncMessage};

/// Longest a connection waits in a partly filled message.
const FLUSH: Duration = Duration::from_secs(1);
/// Batches of received connections waiting for the control loop.
const QUEUE: usize = 1024;

/// Counters of both daemons.
#[derive(Debug, Default)]
pub struct SyncCounters {
    /// Messages sent.
    pub messages_sent: AtomicU64,
    /// Connections sent.
    pub conns_sent: AtomicU64,
    /// Messages received and accepted.
    pub messages_received: AtomicU64,
    /// Connections received.
    pub conns_received: AtomicU64,
    /// Connections installed or refreshed.
    pub conns_installed: AtomicU64,
    /// Refused, by reason.
    pub rejected: Mutex<BTreeMap<String, u64>>,
    /// When the backup first received a message of its current run (ms since the epoch, 0:
    /// none yet).
    pub first_received_ms: AtomicU64,
    /// When the backup daemon started (ms since the epoch, 0: not running).
    pub backup_started_ms: AtomicU64,
}

impl SyncCounters {
    /// True once a backup daemon has listened for `refresh` seconds and two more: a master
    /// sends every connection again within each refresh period, so the table has arrived.
    pub fn synced(&self, refresh: u32) -> bool {
        let started = self.backup_started_ms.load(Relaxed);
        started != 0 && epoch_ms().saturating_sub(started) >= (u64::from(refresh) + 2) * 1000
    }
}

impl SyncCounters {
    /// Counts one refusal.
    pub fn reject(&self, reason: &str) {
        if let Ok(mut m) = self.rejected.lock() {
            *m.entry(reason.to_string()).or_default() += 1;
        }
    }
}

fn epoch_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// One daemon's settings, defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonCfg {
    /// Interface.
    pub interface: String,
    /// Its index.
    pub ifindex: u32,
    /// Sync id (a backup with 0 takes every id).
    pub syncid: u8,
    /// All-active: this director's id (its messages' sync id); a backup takes every id but
    /// this one. 0: none.
    pub own_id: u8,
    /// Largest message.
    pub maxlen: u16,
    /// Multicast group.
    pub group: IpAddr,
    /// UDP port.
    pub port: u16,
    /// Multicast TTL.
    pub ttl: u8,
}

impl DaemonCfg {
    fn status(&self, role: &str) -> DaemonStatus {
        DaemonStatus {
            role: role.into(),
            interface: self.interface.clone(),
            syncid: self.syncid,
            maxlen: self.maxlen,
            group: self.group.to_string(),
            port: self.port,
            ttl: self.ttl,
        }
    }
}

struct Running<T> {
    cfg: DaemonCfg,
    end: T,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl<T> Running<T> {
    fn stop(mut self) {
        self.stop.store(true, Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// The daemons of this director.
#[derive(Default)]
pub struct Daemons {
    master: Option<Running<Sender<Vec<SyncConn>>>>,
    backup: Option<Running<Receiver<Vec<SyncConn>>>>,
    /// Their counters.
    pub counters: Arc<SyncCounters>,
    /// Seconds in which every synced connection is sent again.
    pub refresh: u32,
}

impl Daemons {
    /// No daemon yet; connections are sent again every `refresh` seconds once one runs.
    pub fn new(refresh: u32) -> Daemons {
        Daemons {
            refresh: refresh.max(1),
            ..Daemons::default()
        }
    }

    /// True if a master daemon runs (the sweep exports).
    pub fn sending(&self) -> bool {
        self.master.is_some()
    }

    /// Starts the master daemon (error if one runs: "Daemon has already run", as ipvsadm).
    pub fn start_master(&mut self, cfg: DaemonCfg) -> Result<(), String> {
        if self.master.is_some() {
            return Err("Daemon has already run".into());
        }
        let sock = xvs_io::sync_sock::sender(&cfg.interface, cfg.ifindex, cfg.group, cfg.ttl)
            .map_err(|e| format!("sync master on {}: {e}", cfg.interface))?;
        let (tx, rx) = crossbeam_channel::bounded::<Vec<SyncConn>>(QUEUE);
        let stop = Arc::new(AtomicBool::new(false));
        let (c, s, counters) = (cfg.clone(), Arc::clone(&stop), Arc::clone(&self.counters));
        let handle = std::thread::Builder::new()
            .name("xvs-sync-master".into())
            .spawn(move || send_loop(&sock, &c, &rx, &s, &counters))
            .map_err(|e| e.to_string())?;
        tracing::info!(interface = %cfg.interface, syncid = cfg.syncid, group = %cfg.group, port = cfg.port, "sync master daemon started");
        self.master = Some(Running {
            cfg,
            end: tx,
            stop,
            handle: Some(handle),
        });
        Ok(())
    }

    /// Starts the backup daemon.
    pub fn start_backup(&mut self, cfg: DaemonCfg) -> Result<(), String> {
        if self.backup.is_some() {
            return Err("Daemon has already run".into());
        }
        let sock = xvs_io::sync_sock::receiver(
            &cfg.interface,
            cfg.ifindex,
            cfg.group,
            cfg.port,
            Duration::from_millis(200),
        )
        .map_err(|e| format!("sync backup on {}: {e}", cfg.interface))?;
        let (tx, rx) = crossbeam_channel::bounded::<Vec<SyncConn>>(QUEUE);
        let stop = Arc::new(AtomicBool::new(false));
        self.counters.first_received_ms.store(0, Relaxed);
        self.counters.backup_started_ms.store(epoch_ms(), Relaxed);
        let (c, s, counters) = (cfg.clone(), Arc::clone(&stop), Arc::clone(&self.counters));
        let handle = std::thread::Builder::new()
            .name("xvs-sync-backup".into())
            .spawn(move || receive_loop(&sock, &c, &tx, &s, &counters))
            .map_err(|e| e.to_string())?;
        tracing::info!(interface = %cfg.interface, syncid = cfg.syncid, group = %cfg.group, port = cfg.port, "sync backup daemon started");
        self.backup = Some(Running {
            cfg,
            end: rx,
            stop,
            handle: Some(handle),
        });
        Ok(())
    }

    /// Stops the daemon of `role` ("No daemon is running" if none, as ipvsadm says).
    pub fn stop(&mut self, role: &str) -> Result<(), String> {
        let stopped = match role {
            "master" => self.master.take().map(Running::stop),
            "backup" => {
                self.counters.backup_started_ms.store(0, Relaxed);
                self.backup.take().map(Running::stop)
            }
            _ => return Err(format!("illegal stop-daemon parameter specified: {role}")),
        };
        match stopped {
            Some(()) => {
                tracing::info!(role, "sync daemon stopped");
                Ok(())
            }
            None => Err("No daemon is running".into()),
        }
    }

    /// Stops both (at exit).
    pub fn stop_all(&mut self) {
        if let Some(m) = self.master.take() {
            m.stop();
        }
        if let Some(b) = self.backup.take() {
            b.stop();
        }
    }

    /// Hands connections to the master daemon (dropped, counted, if its queue is full).
    pub fn send(&self, conns: Vec<SyncConn>) {
        if conns.is_empty() {
            return;
        }
        if let Some(m) = &self.master {
            match m.end.try_send(conns) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => self.counters.reject("send_queue_full"),
                Err(TrySendError::Disconnected(_)) => {}
            }
        }
    }

    /// Batches the backup daemon received since the last call.
    pub fn received(&self) -> Vec<Vec<SyncConn>> {
        match &self.backup {
            Some(b) => b.end.try_iter().collect(),
            None => Vec::new(),
        }
    }

    /// The `daemon` reply.
    pub fn status(&self) -> DaemonReply {
        let c = &self.counters;
        DaemonReply {
            daemons: self
                .master
                .iter()
                .map(|m| m.cfg.status("master"))
                .chain(self.backup.iter().map(|b| b.cfg.status("backup")))
                .collect(),
            messages_sent: c.messages_sent.load(Relaxed),
            conns_sent: c.conns_sent.load(Relaxed),
            messages_received: c.messages_received.load(Relaxed),
            conns_received: c.conns_received.load(Relaxed),
            conns_installed: c.conns_installed.load(Relaxed),
            rejected: c.rejected.lock().map(|m| m.clone()).unwrap_or_default(),
        }
    }

    /// Is a daemon of `role` running with this configuration?
    pub fn runs(&self, role: &str) -> Option<&DaemonCfg> {
        match role {
            "master" => self.master.as_ref().map(|m| &m.cfg),
            _ => self.backup.as_ref().map(|b| &b.cfg),
        }
    }
}

fn send_loop(
    sock: &std::net::UdpSocket,
    cfg: &DaemonCfg,
    rx: &Receiver<Vec<SyncConn>>,
    stop: &AtomicBool,
    counters: &SyncCounters,
) {
    let to = std::net::SocketAddr::new(cfg.group, cfg.port);
    let maxlen =
        usize::from(cfg.maxlen).clamp(ipvs_sync::HEADER_LEN + ipvs_sync::CONN_V6_LEN, 65_507);
    let mut buf = vec![0u8; maxlen];
    let mut pending: Vec<SyncConn> = Vec::new();
    let mut since: Option<Instant> = None;
    let flush = |pending: &mut Vec<SyncConn>, buf: &mut [u8]| {
        let mut i = 0;
        while i < pending.len() {
            let Some(mut m) = MessageBuilder::new(buf, cfg.syncid) else {
                return;
            };
            while i < pending.len() && m.push(&pending[i]) {
                i += 1;
            }
            let n = m.count();
            let len = m.finish();
            if n == 0 {
                // One connection bigger than the message: cannot happen with maxlen ≥ 80.
                i += 1;
                continue;
            }
            match sock.send_to(&buf[..len], to) {
                Ok(_) => {
                    counters.messages_sent.fetch_add(1, Relaxed);
                    counters.conns_sent.fetch_add(u64::from(n), Relaxed);
                }
                Err(e) => {
                    tracing::debug!(error = %e, "sync message not sent");
                    counters.reject("send_error");
                }
            }
        }
        pending.clear();
    };
    while !stop.load(Relaxed) {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(batch) => {
                since.get_or_insert_with(Instant::now);
                pending.extend(batch);
            }
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
        }
        // Full messages go at once; what is left within FLUSH.
        let per_msg = (maxlen - ipvs_sync::HEADER_LEN) / ipvs_sync::CONN_V4_LEN;
        if pending.len() >= per_msg || since.is_some_and(|t| t.elapsed() >= FLUSH) {
            flush(&mut pending, &mut buf);
            since = None;
        }
    }
    flush(&mut pending, &mut buf);
}

fn receive_loop(
    sock: &std::net::UdpSocket,
    cfg: &DaemonCfg,
    tx: &Sender<Vec<SyncConn>>,
    stop: &AtomicBool,
    counters: &SyncCounters,
) {
    let mut buf = vec![0u8; 65_536];
    while !stop.load(Relaxed) {
        let n = match sock.recv_from(&mut buf) {
            Ok((n, _)) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) =>
            {
                continue;
            }
            Err(e) => {
                tracing::warn!(error = %e, "sync backup: receive failed");
                std::thread::sleep(Duration::from_millis(200));
                continue;
            }
        };
        match accept(&buf[..n], cfg.syncid, cfg.own_id) {
            Ok(conns) => {
                counters.messages_received.fetch_add(1, Relaxed);
                counters
                    .conns_received
                    .fetch_add(conns.len() as u64, Relaxed);
                let _ =
                    counters
                        .first_received_ms
                        .compare_exchange(0, epoch_ms(), Relaxed, Relaxed);
                if tx.try_send(conns).is_err() {
                    counters.reject("install_queue_full");
                }
            }
            Err(reason) => counters.reject(reason),
        }
    }
}

/// A received message's connections, or why it is refused (ip_vs_sync.c
/// `ip_vs_process_message`: its length must be its size, its sync id ours unless ours is 0,
/// its version 1; a connection that does not frame ends it). An all-active director
/// (`own_id` not 0) takes every id but its own.
pub fn accept(msg: &[u8], syncid: u8, own_id: u8) -> Result<Vec<SyncConn>, &'static str> {
    if msg.len() < ipvs_sync::HEADER_LEN {
        return Err("truncated");
    }
    if usize::from(u16::from_be_bytes([msg[2], msg[3]])) != msg.len() {
        return Err("size");
    }
    let m = SyncMessage::new_checked(msg).map_err(|_| "truncated")?;
    if own_id != 0 {
        if m.syncid() == own_id {
            return Err("own_id");
        }
    } else if syncid != 0 && m.syncid() != syncid {
        return Err("syncid");
    }
    if m.version() != ipvs_sync::VERSION || m.reserved() != 0 || m.spare() != 0 {
        return Err("version");
    }
    let mut out = Vec::new();
    for c in m.conns() {
        match c {
            Ok(c) => out.push(c),
            Err(_) => {
                if out.is_empty() {
                    return Err("malformed");
                }
                break;
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn() -> SyncConn {
        SyncConn {
            v6: false,
            protocol: 6,
            flags: 0x83,
            state: 1,
            cport: 40000,
            vport: 80,
            dport: 80,
            fwmark: 0,
            timeout: 900,
            caddr: xvs_wire::summary::v4_mapped([203, 0, 113, 7]),
            vaddr: xvs_wire::summary::v4_mapped([198, 18, 0, 10]),
            daddr: xvs_wire::summary::v4_mapped([198, 18, 0, 11]),
        }
    }

    #[test]
    fn messages_are_checked_as_a_kernel_backup_checks_them() {
        let mut buf = [0u8; 1472];
        let mut m = MessageBuilder::new(&mut buf, 7).unwrap();
        m.push(&conn());
        let n = m.finish();
        assert_eq!(accept(&buf[..n], 7, 0), Ok(vec![conn()]));
        assert_eq!(
            accept(&buf[..n], 0, 0),
            Ok(vec![conn()]),
            "sync id 0 takes all"
        );
        assert_eq!(accept(&buf[..n], 8, 0), Err("syncid"));
        assert_eq!(accept(&buf[..n - 1], 7, 0), Err("size"));
        let mut v0 = buf;
        v0[5] = 0;
        assert_eq!(accept(&v0[..n], 7, 0), Err("version"));
        assert_eq!(accept(&buf[..5], 7, 0), Err("truncated"));
    }

    #[test]
    fn an_all_active_director_takes_every_id_but_its_own() {
        let mut buf = [0u8; 1472];
        let mut m = MessageBuilder::new(&mut buf, 2).unwrap();
        m.push(&conn());
        let n = m.finish();
        assert_eq!(accept(&buf[..n], 1, 1), Ok(vec![conn()]), "from director 2");
        assert_eq!(accept(&buf[..n], 2, 2), Err("own_id"), "its own");
    }
}
