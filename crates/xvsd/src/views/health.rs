//! `xvsadm health`: every real server and sorry server with its check and state.

use crate::director::Director;
use xvs_control::change::Key;
use xvs_control::proto::{HealthReply, HealthView};
use xvs_core::service::fmt_addr_port;

/// `xvsadm health`: every real server and sorry server with its check and state.
pub fn health(d: &Director) -> HealthReply {
    let t = &d.running.services;
    let mut out = HealthReply::default();
    for s in t.services() {
        if s.down {
            out.withdrawn.push(Key(s.key));
        }
        let any_up = s
            .reals
            .iter()
            .filter_map(|&id| t.real(id))
            .any(|r| r.up && r.options.weight > 0);
        for (id, sorry) in s
            .reals
            .iter()
            .map(|&id| (id, false))
            .chain(s.sorry.map(|id| (id, true)))
        {
            let Some(r) = t.real(id) else { continue };
            let g = d.shared.stats.real_totals(id);
            let st = d.health.state(&(s.key, r.addr, r.port));
            let (check, state, since, last, last_ago, transitions) = match (&st, sorry) {
                (_, true) => (
                    "-".into(),
                    if any_up { "sorry" } else { "sorry (serving)" }.into(),
                    d.shared.clock.elapsed().as_secs_f64(),
                    "-".into(),
                    None,
                    0,
                ),
                (Some(c), false) => (
                    c.check.clone(),
                    if c.up { "up" } else { "down" }.to_string(),
                    c.since.as_secs_f64(),
                    c.last.as_ref().map_or_else(
                        || "not checked yet".to_string(),
                        |(ok, d, _)| format!("{} ({d})", if *ok { "ok" } else { "failed" }),
                    ),
                    c.last.as_ref().map(|(_, _, ago)| ago.as_secs_f64()),
                    c.transitions,
                ),
                (None, false) => (
                    "-".into(),
                    "unchecked".into(),
                    d.shared.clock.elapsed().as_secs_f64(),
                    "-".into(),
                    None,
                    0,
                ),
            };
            out.servers.push(HealthView {
                service: Key(s.key),
                real: fmt_addr_port(&r.addr, r.port),
                check,
                state,
                since,
                last,
                last_ago,
                transitions,
                weight: r.options.weight,
                active: g.active,
                inactive: g.inactive,
            });
        }
    }
    out
}
