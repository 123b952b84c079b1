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
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::Relaxed;
use std::thread::JoinHandle;
use std::time::Duration;
use xvs_control::proto::{Envelope, Request, VERSION};

/// Most requests answered per connection before it is closed (a client cannot hold the
/// socket forever).
const MAX_REQUESTS: usize = 64;

/// The listening socket, served by a thread of its own that hands every request to the
/// control loop (which owns all state) and writes back the answer.
pub struct Server {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Binds `path` (creating its directory, replacing a stale socket), mode 0600, and starts
    /// serving it into `jobs`.
    pub fn bind(path: &Path, jobs: Sender<Job>) -> Result<Server, String> {
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
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("xvs-control".into())
            .spawn(move || {
                for stream in listener.incoming() {
                    if flag.load(Relaxed) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
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
            stop,
            thread: Some(thread),
        })
    }

    /// Stops serving and removes the socket file.
    pub fn close(mut self) {
        self.stop.store(true, Relaxed);
        // Wake the accepting thread.
        let _ = UnixStream::connect(&self.path);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
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
