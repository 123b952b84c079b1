//! New-connection load: TCP SYNs from millions of sources (every frame the first of a
//! connection: the connection-table insert path), first into a table large enough to hold
//! them all, then as a flood into a table far smaller than the flood, with an established UDP
//! stream beside it whose delivery the flood must not starve.

use crate::contender::{Kind, Method};
use crate::measure::{Load, Sample, XvsdWindow};
use crate::table::median;
use std::fmt::Write;

/// Distinct SYN sources: more than any contender inserts in a window, so every SYN is new.
pub const SYN_FLOWS: u32 = 10_000_000;
/// Table size for the insert-rate runs (holds every connection of a window).
pub const BIG_TABLE: usize = 1 << 24;
/// Table size for the flood runs.
pub const SMALL_TABLE: usize = 1 << 16;
/// The established stream beside the flood: flows and packets per second.
pub const BACKGROUND: (u32, f64) = (64, 20_000.0);

/// The contenders of this phase.
pub fn kinds() -> [Kind; 4] {
    [
        Kind::NftDnat,
        Kind::IpvsDr,
        Kind::Xvs(Method::Dr, 1),
        Kind::Xvs(Method::Nat, 1),
    ]
}

/// What one contender did under the loads.
#[derive(Default)]
pub struct ConnOutcome {
    /// Insert-rate samples (xvs without its new-connection budget).
    pub insert: Vec<Sample>,
    /// Flood samples, flat out.
    pub flood: Vec<Sample>,
    /// Flood samples at a fixed rate beyond every contender's insert rate.
    pub flood_fixed: Vec<Sample>,
}

/// Which samples of an outcome a table shows.
type Pick = fn(&ConnOutcome) -> &Vec<Sample>;

/// The established stream's delivery in a flood sample (0 to 1).
pub fn background_delivery(v: &Sample) -> f64 {
    if v.background_offered_pps > 0.0 {
        (v.udp_delivered_pps / v.background_offered_pps).min(1.0)
    } else {
        0.0
    }
}

/// The two loads, from the throughput load's timing.
pub fn loads(base: &Load) -> (Load, Load) {
    let insert = Load {
        traffic: "syn".into(),
        flows: SYN_FLOWS,
        rate: None,
        latency: false,
        background: None,
        ..base.clone()
    };
    let flood = Load {
        background: Some(BACKGROUND),
        ..insert.clone()
    };
    (insert, flood)
}

fn med(v: &[Sample], f: impl Fn(&Sample) -> f64) -> f64 {
    median(v.iter().map(f))
}

/// The median of one of xvsd's own figures over `v`, or "-" for a contender that is not xvsd.
fn xvsd_med(v: &[Sample], f: impl Fn(&XvsdWindow) -> f64) -> String {
    if v.iter().all(|s| s.xvsd.is_none()) {
        return "-".into();
    }
    format!("{:.0}", med(v, |s| s.xvsd.as_ref().map_or(0.0, &f)))
}

/// The phase's tables; `fixed` is the fixed flood's rate, if one ran.
pub fn render(results: &[(Kind, Option<String>, ConnOutcome)], fixed: Option<f64>) -> String {
    let mut s = String::new();
    if results.is_empty() {
        return s;
    }
    let _ = writeln!(
        s,
        "\nnew connections: TCP SYNs from {SYN_FLOWS} sources at the highest rate with at most 1% loss, xvsd table of {BIG_TABLE} entries, without its new-connection budget\n"
    );
    let _ = writeln!(
        s,
        "{:<26} {:>12} {:>16} {:>22} {:>9}",
        "contender", "SYN Mpps", "new conns/s", "table entries/capacity", "dir busy"
    );
    for (kind, why, o) in results {
        if let Some(why) = why {
            let _ = writeln!(s, "{:<26} {why}", kind.label());
            continue;
        }
        if o.insert.is_empty() {
            continue;
        }
        let x = o.insert.last().and_then(|l| l.xvsd.as_ref());
        let _ = writeln!(
            s,
            "{:<26} {:>12.3} {:>16} {:>22} {:>8.0}%",
            kind.label(),
            med(&o.insert, |x| x.delivered_pps) / 1e6,
            xvsd_med(&o.insert, |w| w.conns_created_per_s),
            x.map_or("-".into(), |w| format!(
                "{}/{}",
                w.table_entries, w.table_capacity
            )),
            med(&o.insert, |x| x.director_busy) * 100.0,
        );
    }
    let floods: [(&str, Pick); 2] = [
        ("flat out", |o| &o.flood),
        ("at a fixed rate", |o| &o.flood_fixed),
    ];
    for (how, pick) in floods {
        if results.iter().all(|r| pick(&r.2).is_empty()) {
            continue;
        }
        let rate = if how == "flat out" {
            String::new()
        } else {
            format!(" of {:.3} Mpps", fixed.unwrap_or(0.0) / 1e6)
        };
        let _ = writeln!(
            s,
            "\nflood over capacity: the same SYNs {how}{rate} into a table of {SMALL_TABLE} entries (xvsd with its default new-connection budget), beside {} UDP flows at {} packets/s\n",
            BACKGROUND.0, BACKGROUND.1
        );
        let _ = writeln!(
            s,
            "{:<26} {:>12} {:>16} {:>14} {:>11} {:>22}",
            "contender",
            "SYN Mpps",
            "new conns/s",
            "evictions/s",
            "occupancy",
            "background delivered"
        );
        for (kind, why, o) in results {
            let v = pick(o);
            if why.is_some() || v.is_empty() {
                continue;
            }
            let x = v.last().and_then(|l| l.xvsd.as_ref());
            let _ = writeln!(
                s,
                "{:<26} {:>12.3} {:>16} {:>14} {:>11} {:>21.1}%",
                kind.label(),
                med(v, |x| x.delivered_pps - x.udp_delivered_pps) / 1e6,
                xvsd_med(v, |w| w.conns_created_per_s),
                xvsd_med(v, |w| w.conns_evicted_per_s),
                x.map_or("-".into(), |w| format!(
                    "{:.0}%",
                    100.0 * w.table_entries as f64 / w.table_capacity.max(1) as f64
                )),
                med(v, background_delivery) * 100.0,
            );
        }
    }
    s
}
