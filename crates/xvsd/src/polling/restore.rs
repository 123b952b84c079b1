//! What xvsd changed in the kernel's receive settings, and putting it back: every NAPI knob
//! (`threaded`, `napi_defer_hard_irqs`, `gro_flush_timeout`) and every NAPI thread's CPU
//! affinity and policy, recorded in a file *before* the change, so that after a crash the next
//! start finds the file and restores them before doing anything else.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use xvs_io::napi::{self, Knob};
use xvs_io::sched::{self, Policy};

/// One knob's value before xvsd set it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedKnob {
    /// Interface name.
    pub ifname: String,
    /// Its index then (a different interface of the same name is left alone).
    pub ifindex: u32,
    /// The sysfs file.
    pub knob: String,
    /// The value before.
    pub value: u64,
}

/// A NAPI thread's placement before xvsd moved it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedThread {
    /// Thread id.
    pub pid: u32,
    /// CPUs it could run on.
    pub cpus: Vec<usize>,
    /// Its policy (`SCHED_OTHER`, `SCHED_FIFO 1`, …).
    pub policy: String,
}

/// Everything to put back.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Saved {
    /// The xvsd that made the changes.
    pub pid: u32,
    /// Knobs, in the order they were changed.
    pub knobs: Vec<SavedKnob>,
    /// Threads moved.
    pub threads: Vec<SavedThread>,
}

/// The changes of this run, restored when dropped.
#[derive(Debug)]
pub struct Restorer {
    file: PathBuf,
    saved: Saved,
}

fn ifindex_of(ifname: &str) -> Option<u32> {
    std::fs::read_to_string(format!("/sys/class/net/{ifname}/ifindex"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
}

impl Restorer {
    /// Records changes in `file` (created on the first change, removed once restored).
    pub fn new(file: PathBuf) -> Restorer {
        Restorer {
            file,
            saved: Saved {
                pid: std::process::id(),
                ..Saved::default()
            },
        }
    }

    fn persist(&self) -> Result<(), String> {
        let text = serde_json::to_string_pretty(&self.saved).map_err(|e| e.to_string())?;
        let tmp = self.file.with_extension("tmp");
        std::fs::write(&tmp, text)
            .and_then(|()| std::fs::rename(&tmp, &self.file))
            .map_err(|e| {
                format!(
                    "cannot record the settings to restore in {}: {e}",
                    self.file.display()
                )
            })
    }

    /// Sets `knob` of `ifname` to `value`, recording the old value first (unless this run
    /// already changed it). Nothing is written if the value is already right.
    pub fn set_knob(&mut self, ifname: &str, knob: Knob, value: u64) -> Result<(), String> {
        let old = napi::get(ifname, knob).map_err(|e| e.to_string())?;
        if old == value {
            return Ok(());
        }
        let ifindex = ifindex_of(ifname).unwrap_or(0);
        let known = self
            .saved
            .knobs
            .iter()
            .any(|k| k.ifname == ifname && k.knob == knob.file() && k.ifindex == ifindex);
        if !known {
            // An interface of the same name deleted and created again is another interface:
            // what the old one had is moot, the new one's value is what to put back.
            self.saved
                .knobs
                .retain(|k| !(k.ifname == ifname && k.knob == knob.file()));
            self.saved.knobs.push(SavedKnob {
                ifname: ifname.into(),
                ifindex,
                knob: knob.file().into(),
                value: old,
            });
            self.persist()?;
        }
        napi::set(ifname, knob, value).map_err(|e| format!("{e}"))
    }

    /// Pins thread `pid` to `cpus` (and, if given, sets its policy), recording its placement
    /// first.
    pub fn place_thread(
        &mut self,
        pid: u32,
        cpus: &[usize],
        policy: Option<Policy>,
    ) -> Result<(), String> {
        if !self.saved.threads.iter().any(|t| t.pid == pid) {
            let old_cpus = sched::affinity(pid).map_err(|e| format!("thread {pid}: {e}"))?;
            let old_policy = sched::policy(pid).map_err(|e| format!("thread {pid}: {e}"))?;
            self.saved.threads.push(SavedThread {
                pid,
                cpus: old_cpus,
                policy: old_policy.to_string(),
            });
            self.persist()?;
        }
        sched::set_affinity(pid, cpus).map_err(|e| format!("pinning thread {pid}: {e}"))?;
        if let Some(p) = policy {
            sched::set_policy(pid, p).map_err(|e| format!("thread {pid} to {p}: {e}"))?;
        }
        Ok(())
    }

    /// True if nothing was changed.
    pub fn is_empty(&self) -> bool {
        self.saved.knobs.is_empty() && self.saved.threads.is_empty()
    }

    /// Puts everything back and removes the file.
    pub fn restore(&mut self) {
        if self.is_empty() {
            return;
        }
        for p in apply(&self.saved).0 {
            tracing::warn!("restoring receive settings: {p}");
        }
        tracing::info!(
            knobs = self.saved.knobs.len(),
            threads = self.saved.threads.len(),
            "receive settings restored"
        );
        self.saved.knobs.clear();
        self.saved.threads.clear();
        let _ = std::fs::remove_file(&self.file);
    }
}

impl Drop for Restorer {
    fn drop(&mut self) {
        self.restore();
    }
}

/// Puts `s` back: threads first (while they still exist), then knobs in reverse order.
/// Returns what could not be restored, in words, and the knobs the interface refused for now
/// (veth takes `threaded` only while it has NAPI instances, that is while an XDP program is
/// attached).
fn apply(s: &Saved) -> (Vec<String>, Vec<SavedKnob>) {
    let mut problems = Vec::new();
    let mut refused = Vec::new();
    for t in &s.threads {
        if !napi::is_napi_thread(t.pid) {
            continue; // gone (the knob restore below ends the threads xvsd made)
        }
        if let Err(e) = sched::set_affinity(t.pid, &t.cpus) {
            problems.push(format!("thread {}: affinity: {e}", t.pid));
        }
        match t.policy.parse::<Policy>() {
            Ok(p) => {
                if let Err(e) = sched::set_policy(t.pid, p) {
                    problems.push(format!("thread {}: {p}: {e}", t.pid));
                }
            }
            Err(e) => problems.push(e),
        }
    }
    for k in s.knobs.iter().rev() {
        let Some(knob) = Knob::from_file(&k.knob) else {
            problems.push(format!("unknown setting {}", k.knob));
            continue;
        };
        match ifindex_of(&k.ifname) {
            Some(ix) if ix == k.ifindex || k.ifindex == 0 => {}
            _ => continue, // the interface is gone (or is another one now)
        }
        if let Err(e) = napi::set(&k.ifname, knob, k.value) {
            if e.kind() == std::io::ErrorKind::Unsupported {
                refused.push(k.clone());
            } else {
                problems.push(format!("{} {}: {e}", k.ifname, k.knob));
            }
        }
    }
    (problems, refused)
}

/// Knobs a previous xvsd left changed that the interface refused before xvsd's XDP program
/// was attached: [`Leftover::retry`] puts them back once it is.
#[derive(Debug)]
pub struct Leftover {
    file: PathBuf,
    knobs: Vec<SavedKnob>,
}

impl Leftover {
    /// Tries the refused knobs again (call once the XDP programs are attached) and removes
    /// the record.
    pub fn retry(self) {
        let s = Saved {
            pid: std::process::id(),
            knobs: self.knobs,
            threads: Vec::new(),
        };
        let (problems, refused) = apply(&s);
        for p in problems {
            tracing::warn!("restoring receive settings: {p}");
        }
        for k in refused {
            tracing::warn!(interface = %k.ifname, setting = %k.knob, value = k.value,
                "a previous xvsd's receive setting could not be restored");
        }
        let _ = std::fs::remove_file(&self.file);
    }
}

/// Restores what a previous xvsd recorded in `file` and did not put back (it crashed); a
/// missing file means there is nothing to do. What the interfaces refuse for now is returned
/// for [`Leftover::retry`] (the file stays until then).
pub fn restore_leftover(file: &Path) -> Result<Option<Leftover>, String> {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", file.display())),
    };
    let s: Saved = serde_json::from_str(&text)
        .map_err(|e| format!("{}: not a record of receive settings: {e}", file.display()))?;
    if s.pid != std::process::id() && Path::new(&format!("/proc/{}", s.pid)).exists() {
        let comm = std::fs::read_to_string(format!("/proc/{}/comm", s.pid)).unwrap_or_default();
        if comm.trim() == "xvsd" {
            return Err(format!(
                "{}: xvsd {} is still running with these receive settings",
                file.display(),
                s.pid
            ));
        }
    }
    tracing::warn!(
        previous = s.pid,
        knobs = s.knobs.len(),
        threads = s.threads.len(),
        file = %file.display(),
        "a previous xvsd did not restore its receive settings; restoring them now"
    );
    let (problems, refused) = apply(&s);
    for p in problems {
        tracing::warn!("restoring receive settings: {p}");
    }
    if !refused.is_empty() {
        return Ok(Some(Leftover {
            file: file.to_path_buf(),
            knobs: refused,
        }));
    }
    std::fs::remove_file(file).map_err(|e| format!("{}: {e}", file.display()))?;
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("xvs-restore-{}-{name}", std::process::id()))
    }

    #[test]
    fn nothing_changed_writes_nothing() {
        let f = tmp("none");
        let mut r = Restorer::new(f.clone());
        // lo's gro_flush_timeout is 0: setting 0 changes nothing and records nothing.
        r.set_knob("lo", Knob::GroFlushTimeout, 0).unwrap();
        assert!(r.is_empty());
        assert!(!f.exists());
    }

    #[test]
    fn a_leftover_record_is_applied_and_removed() {
        let f = tmp("leftover");
        let s = Saved {
            pid: 1 << 30, // no such process
            knobs: vec![SavedKnob {
                ifname: "xvs-nonexistent0".into(),
                ifindex: 77,
                knob: "threaded".into(),
                value: 0,
            }],
            threads: vec![SavedThread {
                pid: 1 << 30,
                cpus: vec![0],
                policy: "SCHED_OTHER".into(),
            }],
        };
        std::fs::write(&f, serde_json::to_string(&s).unwrap()).unwrap();
        // The interface and the thread are gone: nothing to do but forget the record.
        assert!(restore_leftover(&f).unwrap().is_none());
        assert!(!f.exists());
        assert!(restore_leftover(&f).unwrap().is_none());
    }

    #[test]
    fn a_broken_record_is_refused_and_kept() {
        let f = tmp("broken");
        std::fs::write(&f, "not json").unwrap();
        let e = restore_leftover(&f).unwrap_err();
        assert!(e.contains("not a record of receive settings"), "{e}");
        assert!(f.exists());
        std::fs::remove_file(&f).unwrap();
    }

    #[test]
    fn the_record_round_trips() {
        let s = Saved {
            pid: 7,
            knobs: vec![SavedKnob {
                ifname: "d0".into(),
                ifindex: 3,
                knob: "gro_flush_timeout".into(),
                value: 0,
            }],
            threads: vec![],
        };
        let t = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<Saved>(&t).unwrap(), s);
    }
}
