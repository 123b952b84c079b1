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
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use xvs_control::proto::{Envelope, Request, VERSION};

/// How often the accepting thread looks for a new client (and for the stop flag).
const ACCEPT_POLL: Duration = Duration::from_millis(10);

/// The longest request line.
const MAX_LINE: usize = 1 << 20;
/// How long a request may take from its first byte to its newline.
const REQUEST_TIME: Duration = Duration::from_secs(10);
/// How long a client may stay connected without starting a request.
const IDLE_TIME: Duration = Duration::from_secs(30);
/// Most clients served at once; more are told so and closed.
const MAX_CLIENTS: usize = 32;

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
    /// Makes `path` ready for a socket: its directory created, a stale socket of an xvsd that
    /// did not stop removed. A path that exists and is not a socket, or a socket someone
    /// answers on, is refused: nothing that is not a leftover of ours is ever replaced.
    /// Called before anything else is set up, so a bad path costs nothing to undo.
    pub fn claim(path: &Path) -> Result<(), String> {
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
        Ok(())
    }

    /// Binds `path` (see [`Server::claim`]), mode 0600, and starts serving it into `jobs`.
    pub fn bind(path: &Path, jobs: Sender<Job>) -> Result<Server, String> {
        Self::claim(path)?;
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
                let clients = Arc::new(AtomicUsize::new(0));
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
                    if clients.load(Relaxed) >= MAX_CLIENTS {
                        let _ = stream.set_write_timeout(Some(Duration::from_millis(100)));
                        let _ = writeln!(
                            &stream,
                            "{}",
                            err(format!(
                                "too many control clients ({MAX_CLIENTS}); try again"
                            ))
                        );
                        continue;
                    }
                    clients.fetch_add(1, Relaxed);
                    let (jobs, clients) = (jobs.clone(), Arc::clone(&clients));
                    // One thread per client, so a slow client cannot block another.
                    let spawned = std::thread::Builder::new()
                        .name("xvs-control-client".into())
                        .spawn({
                            let clients = Arc::clone(&clients);
                            move || {
                                if let Err(e) = converse(&stream, &jobs) {
                                    tracing::debug!(error = %e, "control client");
                                }
                                clients.fetch_sub(1, Relaxed);
                            }
                        });
                    if spawned.is_err() {
                        clients.fetch_sub(1, Relaxed);
                    }
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
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    let mut lines = Lines::new(stream);
    for _ in 0..MAX_REQUESTS {
        let line = match lines.next()? {
            Next::Line(l) => l,
            Next::End => break,
            Next::Refused(why) => {
                let mut w = stream;
                writeln!(w, "{}", err(why))?;
                break;
            }
        };
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

/// What reading the next request gave.
enum Next {
    /// A whole line.
    Line(String),
    /// The client closed the connection (or said nothing for [`IDLE_TIME`]).
    End,
    /// The line broke a limit: why, for the client.
    Refused(String),
}

/// Request lines from one client, within the limits: at most [`MAX_LINE`] bytes, the whole
/// line within [`REQUEST_TIME`] of its first byte, the first byte within [`IDLE_TIME`].
struct Lines<'a> {
    stream: &'a UnixStream,
    buf: Vec<u8>,
    max_line: usize,
    request_time: Duration,
    idle_time: Duration,
}

impl<'a> Lines<'a> {
    fn new(stream: &'a UnixStream) -> Lines<'a> {
        Lines::with_limits(stream, MAX_LINE, REQUEST_TIME, IDLE_TIME)
    }

    fn with_limits(
        stream: &'a UnixStream,
        max_line: usize,
        request_time: Duration,
        idle_time: Duration,
    ) -> Lines<'a> {
        Lines {
            stream,
            buf: Vec::new(),
            max_line,
            request_time,
            idle_time,
        }
    }

    fn next(&mut self) -> std::io::Result<Next> {
        use std::io::Read;
        let mut deadline = Instant::now() + self.idle_time;
        let mut started = !self.buf.is_empty();
        if started {
            deadline = Instant::now() + self.request_time;
        }
        loop {
            if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                let rest = self.buf.split_off(i + 1);
                let line = std::mem::replace(&mut self.buf, rest);
                return Ok(match String::from_utf8(line) {
                    Ok(l) => Next::Line(l),
                    Err(_) => Next::Refused("bad request: not UTF-8".into()),
                });
            }
            if self.buf.len() > self.max_line {
                return Ok(Next::Refused(format!(
                    "bad request: longer than {} bytes",
                    self.max_line
                )));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(if started {
                    Next::Refused(format!(
                        "bad request: not complete within {} s",
                        self.request_time.as_secs()
                    ))
                } else {
                    Next::End
                });
            }
            self.stream.set_read_timeout(Some(left))?;
            let mut chunk = [0u8; 4096];
            let n = match (&mut &*self.stream).read(&mut chunk) {
                Ok(n) => n,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    continue;
                }
                Err(e) => return Err(e),
            };
            if n == 0 {
                return Ok(Next::End);
            }
            if !started {
                started = true;
                deadline = Instant::now() + self.request_time;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
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
    if !raw.get("cmd").is_some_and(Value::is_string) {
        return err("missing \"cmd\" (a command name, such as \"list\")");
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
        Request::Vrrp => ok(d.vrrp_status()),
        Request::Daemon => ok(d.daemon_status()),
        Request::StartDaemon(spec) => match d.start_daemon(&spec) {
            Ok(()) => ok(json!({})),
            Err(e) => err(e),
        },
        Request::StopDaemon { role } => match d.stop_daemon(&role) {
            Ok(()) => ok(json!({})),
            Err(e) => err(e),
        },
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

    #[test]
    fn commands_are_named_never_numbered() {
        let (mut d, _) = crate::director::testing::director_serving();
        let v = answer(r#"{"v":1,"cmd":5}"#, &mut d);
        assert_eq!(v["ok"], false);
        assert!(
            v["error"].as_str().unwrap().contains("a command name"),
            "{v}"
        );
        assert_eq!(answer(r#"{"v":1,"cmd":"list"}"#, &mut d)["ok"], true);
    }

    #[test]
    fn a_request_line_is_bounded_in_length_and_time() {
        let limits = |s| {
            Lines::with_limits(
                s,
                16,
                Duration::from_millis(200),
                Duration::from_millis(300),
            )
        };
        let (a, b) = UnixStream::pair().unwrap();
        (&a).write_all(b"{\"v\":1}\n{\"v\":").unwrap();
        let mut l = limits(&b);
        assert!(matches!(l.next().unwrap(), Next::Line(x) if x == "{\"v\":1}\n"));
        // The rest of the second request never comes: refused once its time is up.
        let t = Instant::now();
        assert!(matches!(l.next().unwrap(), Next::Refused(w) if w.contains("not complete")));
        assert!(t.elapsed() < Duration::from_secs(2));
        // Too long.
        (&a).write_all(&[b'x'; 40]).unwrap();
        let mut l = limits(&b);
        assert!(matches!(l.next().unwrap(), Next::Refused(w) if w.contains("longer than 16")));
        // Silence ends the connection quietly; so does a close.
        let (c, d) = UnixStream::pair().unwrap();
        assert!(matches!(limits(&d).next().unwrap(), Next::End));
        drop(c);
        assert!(matches!(limits(&d).next().unwrap(), Next::End));
    }

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
