//! systemd's notification protocol (sd_notify(3)), for `Type=notify` units: `READY=1` once
//! the workers run, `WATCHDOG=1` from the control loop (so a control thread that hangs gets
//! the daemon restarted), `STOPPING=1`. Outside systemd (`NOTIFY_SOCKET` unset) every call
//! does nothing.

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::{Duration, Instant};

/// Where notifications go, and the watchdog's period.
pub struct Notifier {
    socket: Option<(UnixDatagram, SocketAddr)>,
    watchdog: Option<Duration>,
    last_ping: Option<Instant>,
}

impl Notifier {
    /// From the environment systemd gives a service (`NOTIFY_SOCKET`, `WATCHDOG_USEC` and
    /// `WATCHDOG_PID`); a socket that cannot be reached is logged once and ignored.
    pub fn from_env() -> Notifier {
        let socket = std::env::var("NOTIFY_SOCKET")
            .ok()
            .and_then(|path| match open(&path) {
                Ok(s) => Some(s),
                Err(e) => {
                    tracing::warn!(socket = %path, error = %e, "cannot reach systemd's notification socket");
                    None
                }
            });
        let for_us = std::env::var("WATCHDOG_PID")
            .ok()
            .and_then(|p| p.parse::<u32>().ok())
            .is_none_or(|p| p == std::process::id());
        let watchdog = std::env::var("WATCHDOG_USEC")
            .ok()
            .and_then(|u| u.parse::<u64>().ok())
            .filter(|&u| u > 0 && for_us)
            .map(Duration::from_micros);
        Notifier {
            socket,
            watchdog,
            last_ping: None,
        }
    }

    /// Sends one notification (lines of `KEY=VALUE`).
    fn send(&self, state: &str) {
        if let Some((s, addr)) = &self.socket
            && let Err(e) = s.send_to_addr(state.as_bytes(), addr)
        {
            tracing::debug!(error = %e, "sd_notify failed");
        }
    }

    /// The daemon serves: workers run, the control socket answers.
    pub fn ready(&self, status: &str) {
        self.send(&format!(
            "READY=1\nSTATUS={status}\nMAINPID={}",
            std::process::id()
        ));
    }

    /// The daemon stops.
    pub fn stopping(&self) {
        self.send("STOPPING=1");
    }

    /// Feeds the watchdog at `now` if half its period has passed since the last time.
    pub fn watchdog(&mut self, now: Instant) {
        let Some(period) = self.watchdog else {
            return;
        };
        if self
            .last_ping
            .is_none_or(|t| now.duration_since(t) >= period / 2)
        {
            self.last_ping = Some(now);
            self.send("WATCHDOG=1");
        }
    }
}

/// A datagram socket and the address of `path` (a file, or `@name` in the abstract namespace).
fn open(path: &str) -> std::io::Result<(UnixDatagram, SocketAddr)> {
    let addr = match path.strip_prefix('@') {
        Some(name) => SocketAddr::from_abstract_name(name.as_bytes())?,
        None => SocketAddr::from_pathname(path)?,
    };
    Ok((UnixDatagram::unbound()?, addr))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notifications_reach_the_socket_and_the_watchdog_keeps_its_pace() {
        let dir = std::env::temp_dir().join(format!("xvs-notify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify");
        let _ = std::fs::remove_file(&path);
        let listener = UnixDatagram::bind(&path).unwrap();
        listener
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let mut n = Notifier {
            socket: Some(open(path.to_str().unwrap()).unwrap()),
            watchdog: Some(Duration::from_secs(10)),
            last_ping: None,
        };
        let mut buf = [0u8; 256];
        let mut next = || {
            let k = listener.recv(&mut buf).unwrap();
            String::from_utf8_lossy(&buf[..k]).into_owned()
        };
        n.ready("serving");
        assert!(next().starts_with("READY=1\nSTATUS=serving"));
        let t0 = Instant::now();
        n.watchdog(t0);
        assert_eq!(next(), "WATCHDOG=1");
        // Not again before half the period; then again.
        n.watchdog(t0 + Duration::from_secs(4));
        n.watchdog(t0 + Duration::from_secs(5));
        assert_eq!(next(), "WATCHDOG=1");
        n.stopping();
        assert_eq!(next(), "STOPPING=1");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn outside_systemd_nothing_is_sent() {
        let mut n = Notifier {
            socket: None,
            watchdog: None,
            last_ping: None,
        };
        assert!(n.socket.is_none());
        n.ready("x");
        n.watchdog(Instant::now());
    }
}
