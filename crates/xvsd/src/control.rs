//! The control socket: a Unix stream socket (mode 0600) answering one JSON request per line
//! with one JSON reply line (protocol version 1, `xvs_control::proto`). Several requests may
//! follow each other on one connection. A thread accepts and reads; the control loop, which
//! owns the state, answers as soon as a request arrives.

use crate::director::Director;
use crate::jobs::Job;
use crate::metrics;
use crate::views;
use crossbeam_channel::Sender;
use serde::Serialize;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::Relaxed;
use std::thread::JoinHandle;
use std::time::Duration;
use xvs_control::proto::{Envelope, Request, VERSION};

/// How often the accepting thread looks for a new client (and for the stop flag).
const ACCEPT_POLL: Duration = Duration::from_millis(10);

/// Most requests answered per connection before it is closed (a client cannot hold the
/// socket forever).
const MAX_REQUESTS: usize = 64;

/// The listening socket, served by a thread of its own that hands every request to the
/// control loop (which owns all state) and writes back the answer.
pub struct Server {
    path: PathBuf,
    /// The socket file's inode, so that only our own socket is removed at the end.
    inode: Option<u64>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Binds `path` (creating its directory, replacing a stale socket), mode 0600, and starts
    /// serving it into `jobs`. A path that exists and is not a socket, or a socket someone
    /// answers on, is refused: nothing that is not a leftover of ours is ever replaced.
    pub fn bind(path: &Path, jobs: Sender<Job>) -> Result<Server, String> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        match std::fs::symlink_metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("cannot check {}: {e}", path.display())),
            Ok(m) if !m.file_type().is_socket() => {
                return Err(format!(
                    "{} exists and is not a socket: refusing to replace it (give another \
                     --control-socket PATH)",
                    path.display()
                ));
            }
            Ok(_) if UnixStream::connect(path).is_ok() => {
                return Err(format!(
                    "{} is in use by a running xvsd; give this one --control-socket PATH",
                    path.display()
                ));
            }
            // A socket nobody listens on: an xvsd's that did not stop.
            Ok(_) => std::fs::remove_file(path)
                .map_err(|e| format!("cannot remove the stale {}: {e}", path.display()))?,
        }
        let listener = UnixListener::bind(path)
            .map_err(|e| format!("cannot listen on {}: {e}", path.display()))?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| format!("cannot set the mode of {}: {e}", path.display()))?;
        let inode = std::fs::symlink_metadata(path).map(|m| m.ino()).ok();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        // Accepting without blocking, so that stopping never depends on reaching the socket
        // by its path (which someone may have replaced meanwhile).
        listener
            .set_nonblocking(true)
            .map_err(|e| format!("cannot set up {}: {e}", path.display()))?;
        let thread = std::thread::Builder::new()
            .name("xvs-control".into())
            .spawn(move || {
                while !flag.load(Relaxed) {
                    let stream = match listener.accept() {
                        Ok((s, _)) => s,
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            std::thread::sleep(ACCEPT_POLL);
                            continue;
                        }
                        Err(_) => {
                            std::thread::sleep(ACCEPT_POLL);
                            continue;
                        }
                    };
                    if stream.set_nonblocking(false).is_err() {
                        continue;
                    }
                    let jobs = jobs.clone();
                    // One thread per client, so a slow client cannot block another.
                    let _ = std::thread::Builder::new()
                        .name("xvs-control-client".into())
                        .spawn(move || {
                            if let Err(e) = converse(&stream, &jobs) {
                                tracing::debug!(error = %e, "control client");
                            }
                        });
                }
            })
            .map_err(|e| format!("cannot start the control socket thread: {e}"))?;
        Ok(Server {
            path: path.to_path_buf(),
            inode,
            stop,
            thread: Some(thread),
        })
    }

    /// Stops serving and removes the socket file (if it is still ours).
    pub fn close(self) {
        drop(self);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let still_ours = std::fs::symlink_metadata(&self.path)
            .is_ok_and(|m| m.file_type().is_socket() && Some(m.ino()) == self.inode);
        if still_ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn converse(stream: &UnixStream, jobs: &Sender<Job>) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(stream);
    for _ in 0..MAX_REQUESTS {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            break;
        }
        let (tx, rx) = crossbeam_channel::bounded(1);
        if jobs.send(Job::Request(line, tx)).is_err() {
            break;
        }
        let Ok(reply) = rx.recv_timeout(Duration::from_secs(60)) else {
            break;
        };
        let mut w = stream;
        writeln!(w, "{reply}")?;
    }
    Ok(())
}

/// Answers one job (in the control loop).
pub fn handle(job: Job, d: &mut Director) {
    match job {
        Job::Request(line, reply) => {
            let _ = reply.send(answer(&line, d).to_string());
        }
        Job::Scrape(reply) => {
            let _ = reply.send(metrics::render(d));
        }
    }
}

fn ok(payload: impl Serialize) -> Value {
    let mut v = serde_json::to_value(payload).unwrap_or(Value::Null);
    match v.as_object_mut() {
        Some(m) => {
            m.insert("v".into(), VERSION.into());
            m.insert("ok".into(), true.into());
            v
        }
        None => json!({"v": VERSION, "ok": true, "data": v}),
    }
}

fn err(msg: impl Into<String>) -> Value {
    json!({"v": VERSION, "ok": false, "error": msg.into()})
}

/// Answers one request line.
pub fn answer(line: &str, d: &mut Director) -> Value {
    let raw: Value = match serde_json::from_str(line) {
        Ok(v) => v,
        Err(e) => return err(format!("bad request: {e}")),
    };
    match raw.get("v").and_then(Value::as_u64) {
        Some(v) if v == u64::from(VERSION) => {}
        Some(v) => {
            return err(format!(
                "protocol version {v} is not supported (this xvsd speaks {VERSION})"
            ));
        }
        None => return err("missing \"v\" (protocol version)"),
    }
    let req = match serde_json::from_value::<Envelope>(raw) {
        Ok(e) => e.req,
        Err(e) => return err(format!("bad request: {e}")),
    };
    match req {
        Request::Ping => ok(json!({})),
        Request::Stats => ok(views::stats::stats(d)),
        Request::List => ok(views::listing::list(d)),
        Request::Conns { limit } => ok(views::listing::conns(d, limit.unwrap_or(100_000))),
        Request::Apply { changes } => match d.apply(&changes, "control socket") {
            Ok(r) => ok(r),
            Err(e) => err(e),
        },
        Request::Zero { service } => match d.zero(service.as_ref().map(|k| &k.0)) {
            Ok(()) => ok(json!({})),
            Err(e) => err(e),
        },
        Request::Reload { path } => match d.reload(path.as_deref().map(Path::new)) {
            Ok(r) => ok(r),
            Err(e) => {
                tracing::warn!(error = %e, "reload refused; the running configuration is unchanged");
                err(e)
            }
        },
        Request::Trace(q) => match views::trace::trace(d, &q) {
            Ok(r) => ok(r),
            Err(e) => err(e),
        },
        Request::Metrics => ok(json!({"text": metrics::render(d)})),
        Request::Health => ok(views::health::health(d)),
        Request::SetCheck {
            service,
            addr,
            port,
            check,
        } => match d.set_check(&service.0, addr, port, check) {
            Ok(()) => ok(json!({})),
            Err(e) => err(e),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("xvsd-control-{}-{name}", std::process::id()))
    }

    #[test]
    fn only_a_stale_socket_is_replaced_and_only_our_own_is_removed() {
        let (tx, _rx) = crossbeam_channel::bounded(1);
        // A file that is not a socket is left alone.
        let file = path("config.yaml");
        std::fs::write(&file, "services: []\n").unwrap();
        let e = Server::bind(&file, tx.clone()).err().expect("refused");
        assert!(e.contains("is not a socket"), "{e}");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "services: []\n");
        let _ = std::fs::remove_file(&file);
        // A socket nobody answers on is a leftover: replaced.
        let sock = path("xvsd.sock");
        drop(UnixListener::bind(&sock).unwrap());
        assert!(sock.exists());
        let server = Server::bind(&sock, tx.clone()).expect("a stale socket is replaced");
        // A socket that answers is someone's: refused.
        let e = Server::bind(&sock, tx.clone()).err().expect("refused");
        assert!(e.contains("in use by a running xvsd"), "{e}");
        server.close();
        assert!(!sock.exists(), "our socket is removed at the end");
        // A socket put in our place meanwhile is not ours to remove.
        let server = Server::bind(&sock, tx).unwrap();
        std::fs::remove_file(&sock).unwrap();
        let other = UnixListener::bind(&sock).unwrap();
        server.close();
        assert!(sock.exists(), "someone else's socket stays");
        drop(other);
        let _ = std::fs::remove_file(&sock);
    }
}
