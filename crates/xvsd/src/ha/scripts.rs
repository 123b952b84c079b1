//! Commands VRRP runs: tracking scripts (`vrrp_script`: every interval, with a timeout, `rise`
//! successes in a row make it up and `fall` failures down, as keepalived counts them) and notify
//! commands (started and left to run; reaped). Each runs with `sh -c` in a process group of its
//! own, so a timed-out script is killed with whatever it started. Nothing here blocks: the
//! runner polls.

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use xvs_control::config::ha::VrrpScriptConfig;

/// Starts `cmd` with `sh -c` in a group of its own, output discarded.
fn spawn(cmd: &str, user: Option<&str>) -> std::io::Result<Child> {
    let mut c = Command::new("sh");
    c.process_group(0)
        .args(["-c", cmd])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(u) = user {
        // Run as that user through runuser (xvsd itself stays root).
        c = Command::new("runuser");
        c.process_group(0)
            .args(["-u", u, "--", "sh", "-c", cmd])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
    }
    c.spawn()
}

/// A tracking script and its state.
#[derive(Debug)]
pub struct Script {
    /// Its settings.
    pub cfg: VrrpScriptConfig,
    /// Up (successes counted to `rise`), down, or not run yet.
    pub up: Option<bool>,
    oks: u32,
    fails: u32,
    next: Instant,
    running: Option<(Child, Instant)>,
}

impl Script {
    /// A script first run at `now` (keepalived runs it at once).
    pub fn new(cfg: VrrpScriptConfig, now: Instant) -> Script {
        Script {
            cfg,
            up: None,
            oks: 0,
            fails: 0,
            next: now,
            running: None,
        }
    }

    /// When it needs attention next.
    pub fn deadline(&self) -> Instant {
        match &self.running {
            Some((_, started)) => *started + self.timeout(),
            None => self.next,
        }
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs_f64(self.cfg.timeout.unwrap_or(self.cfg.interval).max(0.001))
    }

    /// Starts a due run, collects a finished or timed-out one; returns the new up/down state
    /// if it changed.
    pub fn poll(&mut self, now: Instant) -> Option<bool> {
        let timeout = self.timeout();
        let result = match &mut self.running {
            Some((child, started)) => match child.try_wait() {
                Ok(Some(st)) => Some(st.success()),
                Ok(None) if now >= *started + timeout => {
                    let _ = xvs_io::sched::kill_group(child.id());
                    let _ = child.wait();
                    tracing::warn!(script = %self.cfg.name, "VRRP script timed out");
                    Some(false)
                }
                Ok(None) => None,
                Err(_) => Some(false),
            },
            None => {
                if now >= self.next {
                    self.next = now + Duration::from_secs_f64(self.cfg.interval.max(1.0));
                    match spawn(&self.cfg.script, self.cfg.user.as_deref()) {
                        Ok(c) => self.running = Some((c, now)),
                        Err(e) => {
                            tracing::warn!(script = %self.cfg.name, error = %e, "cannot run the VRRP script");
                            return self.record(false);
                        }
                    }
                }
                None
            }
        };
        let ok = result?;
        self.running = None;
        self.record(ok)
    }

    /// Counts a result (the first one decides, as keepalived's INIT state does).
    fn record(&mut self, ok: bool) -> Option<bool> {
        if ok {
            self.oks += 1;
            self.fails = 0;
        } else {
            self.fails += 1;
            self.oks = 0;
        }
        let now_up = match self.up {
            None => ok,
            Some(true) => self.fails < self.cfg.fall,
            Some(false) => self.oks >= self.cfg.rise,
        };
        if self.up == Some(now_up) {
            return None;
        }
        let first = self.up.is_none();
        self.up = Some(now_up);
        if !first || !now_up {
            tracing::info!(script = %self.cfg.name, "VRRP script {}", if now_up { "succeeded" } else { "failed" });
        }
        Some(now_up)
    }
}

/// Notify commands started and not finished yet.
#[derive(Debug, Default)]
pub struct Notifier {
    running: Vec<Child>,
}

/// `s` quoted for sh.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

impl Notifier {
    /// Starts `cmd` (its own argv; `args` appended, quoted).
    pub fn run(&mut self, cmd: &str, args: &[String]) {
        let line = std::iter::once(cmd.to_string())
            .chain(args.iter().map(|a| shell_quote(a)))
            .collect::<Vec<_>>()
            .join(" ");
        match spawn(&line, None) {
            Ok(c) => self.running.push(c),
            Err(e) => tracing::warn!(command = %cmd, error = %e, "cannot run a notify command"),
        }
    }

    /// Reaps the finished ones.
    pub fn reap(&mut self) {
        self.running
            .retain_mut(|c| !matches!(c.try_wait(), Ok(Some(_)) | Err(_)));
    }

    /// Waits up to `limit` for the running ones (at stop: keepalived gives STOP scripts 1 s).
    pub fn finish(&mut self, limit: Duration) {
        let end = Instant::now() + limit;
        while !self.running.is_empty() && Instant::now() < end {
            self.reap();
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(script: &str, rise: u32, fall: u32) -> VrrpScriptConfig {
        VrrpScriptConfig {
            name: "chk".into(),
            script: script.into(),
            interval: 1.0,
            timeout: Some(0.3),
            weight: 0,
            rise,
            fall,
            init_fail: false,
            user: None,
        }
    }

    fn run_once(s: &mut Script, now: &mut Instant) -> Option<bool> {
        s.poll(*now);
        loop {
            std::thread::sleep(Duration::from_millis(20));
            *now = Instant::now();
            if s.running.is_none() {
                return s.up;
            }
            s.poll(*now);
        }
    }

    #[test]
    fn the_first_run_decides_then_rise_and_fall() {
        let mut now = Instant::now();
        let mut s = Script::new(cfg("test -e /nonexistent-xvs", 2, 2), now);
        assert_eq!(run_once(&mut s, &mut now), Some(false));
        s.cfg.script = "true".into();
        s.next = now;
        assert_eq!(
            run_once(&mut s, &mut now),
            Some(false),
            "one success of rise 2"
        );
        s.next = now;
        assert_eq!(run_once(&mut s, &mut now), Some(true));
        s.cfg.script = "sleep 5".into();
        s.next = now;
        assert_eq!(
            run_once(&mut s, &mut now),
            Some(true),
            "one timeout of fall 2"
        );
        s.next = now;
        assert_eq!(run_once(&mut s, &mut now), Some(false));
    }
}
