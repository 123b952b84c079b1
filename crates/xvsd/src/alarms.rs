//! Trouble the counters show, logged once when it starts and once when it ends: a transmit
//! ring full, a fill ring run dry (the UMEM exhausted), a receive ring full, frames the
//! steering program dropped for a worker behind or beyond the SYN budget, next hops without a
//! MAC, a full connection table. Every frame is counted anyway; the log says when, for how
//! long and how many, instead of a line per frame or nothing at all.
//!
//! The control loop reads the counters once a second ([`Alarms::observe`]); an episode starts
//! with the first second a counter moves and ends after [`QUIET_SECONDS`] seconds in which it
//! did not.

use std::collections::HashMap;
use std::time::Instant;

/// Seconds without a new count after which an episode is over.
pub const QUIET_SECONDS: u32 = 2;

/// One counter as read now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reading {
    /// What it is, in words (also its identity): "ext0 queue 0: fill ring ran dry".
    pub what: String,
    /// Why it matters, said when the episode starts.
    pub meaning: &'static str,
    /// The counter's value (monotonic).
    pub value: u64,
}

#[derive(Debug)]
struct Watched {
    last: u64,
    episode: Option<Episode>,
}

#[derive(Debug)]
struct Episode {
    since: Instant,
    at_start: u64,
    quiet: u32,
}

/// What happened to a counter this second.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// It started moving: `count` in the first second.
    Started {
        /// The counter.
        what: String,
        /// Counted in the first second.
        count: u64,
    },
    /// It stopped `seconds` after it started, having counted `count`.
    Ended {
        /// The counter.
        what: String,
        /// How long the episode lasted.
        seconds: u64,
        /// Counted in all.
        count: u64,
    },
}

/// The watched counters.
#[derive(Debug, Default)]
pub struct Alarms {
    watched: HashMap<String, Watched>,
}

impl Alarms {
    /// Takes this second's readings, logs what started and ended, and returns it.
    pub fn observe(&mut self, now: Instant, readings: Vec<Reading>) -> Vec<Event> {
        let mut events = Vec::new();
        for r in readings {
            let Some(w) = self.watched.get_mut(&r.what) else {
                // First sight: what was counted before xvsd watched is not an episode.
                self.watched.insert(
                    r.what,
                    Watched {
                        last: r.value,
                        episode: None,
                    },
                );
                continue;
            };
            let moved = r.value.saturating_sub(w.last);
            // A counter that went back (a socket opened again) starts over.
            let at = w.last.min(r.value);
            w.last = r.value;
            match (&mut w.episode, moved > 0) {
                (None, true) => {
                    tracing::warn!(count = moved, "{}: started ({})", r.what, r.meaning);
                    w.episode = Some(Episode {
                        since: now,
                        at_start: at,
                        quiet: 0,
                    });
                    events.push(Event::Started {
                        what: r.what,
                        count: moved,
                    });
                }
                (Some(e), true) => e.quiet = 0,
                (Some(e), false) => {
                    e.quiet += 1;
                    if e.quiet >= QUIET_SECONDS {
                        let seconds = now.duration_since(e.since).as_secs();
                        let count = r.value.saturating_sub(e.at_start);
                        tracing::info!(seconds, count, "{}: ended", r.what);
                        w.episode = None;
                        events.push(Event::Ended {
                            what: r.what,
                            seconds,
                            count,
                        });
                    }
                }
                (None, false) => {}
            }
        }
        events
    }

    /// The counters in an episode now.
    pub fn active(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self
            .watched
            .iter()
            .filter(|(_, w)| w.episode.is_some())
            .map(|(k, _)| k.as_str())
            .collect();
        v.sort_unstable();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn r(v: u64) -> Vec<Reading> {
        vec![Reading {
            what: "int0 queue 0: transmit ring full".into(),
            meaning: "frames dropped",
            value: v,
        }]
    }

    #[test]
    fn an_episode_is_told_once_when_it_starts_and_once_when_it_ends() {
        let mut a = Alarms::default();
        let t0 = Instant::now();
        let s = |n| t0 + Duration::from_secs(n);
        // Counted before watching: no episode.
        assert!(a.observe(s(0), r(100)).is_empty());
        assert!(a.observe(s(1), r(100)).is_empty());
        let e = a.observe(s(2), r(150));
        assert_eq!(
            e,
            vec![Event::Started {
                what: "int0 queue 0: transmit ring full".into(),
                count: 50
            }]
        );
        // Still counting, then one quiet second: nothing said.
        assert!(a.observe(s(3), r(400)).is_empty());
        assert!(a.observe(s(4), r(400)).is_empty());
        assert_eq!(a.active().len(), 1);
        // It moves again: the same episode.
        assert!(a.observe(s(5), r(410)).is_empty());
        assert!(a.observe(s(6), r(410)).is_empty());
        let e = a.observe(s(7), r(410));
        assert_eq!(
            e,
            vec![Event::Ended {
                what: "int0 queue 0: transmit ring full".into(),
                seconds: 5,
                count: 310
            }]
        );
        assert!(a.active().is_empty());
        assert!(a.observe(s(8), r(410)).is_empty());
    }
}
