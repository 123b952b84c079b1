//! `xvsadm health`: one line per real server (and sorry server) under its service, with the
//! check, its state and for how long, the last result and when, and the connections left, so
//! an operator can see when a drained server is safe to remove.

use crate::change::service_order;
use crate::proto::{HealthReply, HealthView};
use std::fmt::Write;

/// A duration in whole units an operator reads at a glance: `850ms`, `42s`, `3m04s`, `2h05m`,
/// `3d04h`.
pub fn human_duration(secs: f64) -> String {
    if !secs.is_finite() || secs < 0.0 {
        return "-".into();
    }
    if secs < 1.0 {
        return format!("{}ms", (secs * 1000.0) as u64);
    }
    let s = secs as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        3600..86_400 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{:02}h", s / 86_400, s % 86_400 / 3600),
    }
}

/// The state column: the health state, marked `drained` when an operator set weight 0 on a
/// server that is up (no new connections; existing ones finish).
pub fn state(v: &HealthView) -> String {
    if v.weight == 0 && v.state != "down" && !v.state.starts_with("sorry") {
        format!("{} (drained)", v.state)
    } else {
        v.state.clone()
    }
}

const HEADER: [&str; 9] = [
    "  -> RemoteAddress:Port",
    "State",
    "For",
    "Check",
    "Last result",
    "Checked",
    "Changes",
    "Weight",
    "ActiveConn InActConn",
];

/// The `xvsadm health` table: services in `-Ln` order, each followed by its servers.
pub fn render(reply: &HealthReply) -> String {
    let mut services: Vec<_> = reply.servers.iter().map(|v| v.service).collect();
    services.sort_by_key(|k| service_order(&k.0));
    services.dedup();
    let rows: Vec<[String; 9]> = reply
        .servers
        .iter()
        .map(|v| {
            [
                format!("  -> {}", v.real),
                state(v),
                human_duration(v.since),
                v.check.clone(),
                v.last.clone(),
                v.last_ago
                    .map_or_else(|| "-".into(), |a| format!("{} ago", human_duration(a))),
                v.transitions.to_string(),
                v.weight.to_string(),
                format!("{:<10} {}", v.active, v.inactive),
            ]
        })
        .collect();
    let mut width = HEADER.map(str::len);
    for r in &rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.len());
        }
    }
    let line = |out: &mut String, cells: &[&str]| {
        let mut l = String::new();
        for (i, (c, w)) in cells.iter().zip(width).enumerate() {
            if i + 1 == cells.len() {
                l.push_str(c);
            } else {
                let _ = write!(l, "{c:<w$} ");
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    let mut out = String::from("Prot LocalAddress:Port\n");
    line(&mut out, &HEADER);
    for k in services {
        let withdrawn = reply.withdrawn.contains(&k);
        let _ = writeln!(
            out,
            "{}{}",
            k.0,
            if withdrawn {
                "  WITHDRAWN (below quorum)"
            } else {
                ""
            }
        );
        for (v, r) in reply.servers.iter().zip(&rows) {
            if v.service == k {
                line(&mut out, &r.each_ref().map(String::as_str));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::change::Key;

    fn view(service: &str, real: &str, state: &str, weight: u32, active: u64) -> HealthView {
        HealthView {
            service: service.parse().unwrap(),
            real: real.into(),
            check: "HTTP GET /health [200]".into(),
            state: state.into(),
            since: 75.0,
            last: "ok (HTTP 200)".into(),
            last_ago: Some(0.4),
            transitions: 2,
            weight,
            active,
            inactive: 1,
        }
    }

    #[test]
    fn durations_read_at_a_glance() {
        assert_eq!(human_duration(0.25), "250ms");
        assert_eq!(human_duration(42.9), "42s");
        assert_eq!(human_duration(184.0), "3m04s");
        assert_eq!(human_duration(7500.0), "2h05m");
        assert_eq!(human_duration(3.0 * 86_400.0 + 4.0 * 3600.0), "3d04h");
        assert_eq!(human_duration(f64::NAN), "-");
    }

    #[test]
    fn servers_listed_under_their_service_in_address_order() {
        let b: Key = "TCP 198.18.0.20:80".parse().unwrap();
        let reply = HealthReply {
            servers: vec![
                view("TCP 198.18.0.20:80", "198.18.1.21:80", "down", 1, 0),
                view("TCP 198.18.0.10:80", "198.18.1.11:80", "up", 1, 3),
                view("TCP 198.18.0.10:80", "198.18.1.12:80", "up", 0, 1),
            ],
            withdrawn: vec![b],
        };
        let text = render(&reply);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "Prot LocalAddress:Port");
        assert!(lines[1].starts_with("  -> RemoteAddress:Port State"));
        assert_eq!(lines[2], "TCP 198.18.0.10:80");
        assert!(lines[3].starts_with("  -> 198.18.1.11:80"), "{}", lines[3]);
        assert!(lines[3].contains(" up "), "{}", lines[3]);
        assert!(lines[3].contains("1m15s"), "{}", lines[3]);
        assert!(lines[3].contains("400ms ago"), "{}", lines[3]);
        assert!(lines[4].contains("up (drained)"), "{}", lines[4]);
        assert!(lines[4].ends_with("1          1"), "{}", lines[4]);
        assert_eq!(lines[5], "TCP 198.18.0.20:80  WITHDRAWN (below quorum)");
        assert!(lines[6].contains(" down "), "{}", lines[6]);
        // Columns line up: every server line has its state where the header has State.
        let col = lines[1].find("State").unwrap();
        for l in [lines[3], lines[4], lines[6]] {
            assert_ne!(&l[col..=col], " ", "{l}");
            assert_eq!(&l[col - 1..col], " ", "{l}");
        }
    }
}
