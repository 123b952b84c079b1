//! The results table (medians per contender, then ratios) and its JSON form.

use crate::contender::{Kind, Method};
use crate::{Cli, Outcome, Phase};
use std::fmt::Write;

/// The median of `v` (0 if empty).
pub fn median(v: impl Iterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = v.collect();
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The median of `f` over an outcome's samples.
pub fn med(o: &Outcome, f: impl Fn(&crate::measure::Sample) -> f64) -> f64 {
    median(o.samples.iter().map(f))
}

/// The median delivered rate of `kind`, if it ran.
pub fn find(outcomes: &[Outcome], kind: Kind) -> Option<f64> {
    outcomes
        .iter()
        .find(|o| o.kind == kind && !o.samples.is_empty())
        .map(|o| med(o, |s| s.delivered_pps))
}

/// The ratios the report is about: (what, value), where both sides ran.
pub fn ratios(outcomes: &[Outcome]) -> Vec<(String, f64)> {
    let mut out = Vec::new();
    let nft = find(outcomes, Kind::NftDnat);
    let fwd = find(outcomes, Kind::KernelForward);
    let only = find(outcomes, Kind::XvsForwardOnly);
    let ipvs_dr = find(outcomes, Kind::IpvsDr);
    let ipvs_nat = find(outcomes, Kind::IpvsNat);
    for m in [Method::Dr, Method::Nat, Method::Tun, Method::FullNat] {
        let Some(x) = find(outcomes, Kind::Xvs(m, 1)) else {
            continue;
        };
        let name = Kind::Xvs(m, 1).label();
        for (base, label) in [
            (nft, "nftables DNAT"),
            (fwd, "kernel forwarding"),
            (only, "xvs forward-only"),
            (
                if m == Method::Dr { ipvs_dr } else { None },
                "kernel IPVS DR",
            ),
            (
                if m == Method::Nat { ipvs_nat } else { None },
                "kernel IPVS NAT",
            ),
        ] {
            if let Some(b) = base.filter(|b| *b > 0.0) {
                out.push((format!("{name} ÷ {label}"), x / b));
            }
        }
        if let Some(two) = find(outcomes, Kind::Xvs(m, 2)) {
            if x > 0.0 {
                out.push((format!("{} ÷ {name}", Kind::Xvs(m, 2).label()), two / x));
            }
        }
    }
    out
}

fn us(ns: u64) -> String {
    format!("{:.1}", ns as f64 / 1000.0)
}

/// One phase's table, as printed.
pub fn render(cli: &Cli, phase: &Phase) -> String {
    let mut s = String::new();
    let outcomes = &phase.outcomes;
    if outcomes.is_empty() {
        return s;
    }
    let _ = writeln!(
        s,
        "\n{}: {}-byte {} frames, {} flows; medians of {} round(s) of {} s at the highest rate found with at most {:.0}% loss; generator on core {}, director on core {}; latency at {:.0}% of that rate\n",
        phase.name(),
        phase.size,
        cli.traffic,
        cli.flows,
        cli.rounds,
        cli.duration,
        crate::MAX_LOSS * 100.0,
        cli.gen_core,
        cli.dir_core,
        cli.latency_fraction * 100.0
    );
    let _ = writeln!(
        s,
        "{:<26} {:>8} {:>17} {:>9} {:>9} {:>14} {:>7} {:>8} {:>8} {:>9}",
        "contender",
        "Mpps",
        "min–max",
        "flat out",
        "dir busy",
        "Mpps/busy-CPU",
        "loss",
        "p50 µs",
        "p99 µs",
        "p99.9 µs"
    );
    for o in outcomes {
        if let Some(why) = &o.unavailable {
            let _ = writeln!(s, "{:<26} {why}", o.kind.label());
            continue;
        }
        if o.samples.is_empty() {
            continue;
        }
        let d: Vec<f64> = o.samples.iter().map(|x| x.delivered_pps / 1e6).collect();
        let lo = d.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = d.iter().copied().fold(0.0, f64::max);
        let lat = o.latency.as_ref().and_then(|l| l.latency.as_ref());
        let _ = writeln!(
            s,
            "{:<26} {:>8.3} {:>17} {:>9} {:>8.0}% {:>14.3} {:>6.1}% {:>8} {:>8} {:>9}",
            o.kind.label(),
            med(o, |x| x.delivered_pps) / 1e6,
            format!("{lo:.3}–{hi:.3}"),
            o.flat_out
                .as_ref()
                .map_or("-".into(), |f| format!("{:.3}", f.delivered_pps / 1e6)),
            med(o, |x| x.director_busy) * 100.0,
            med(o, |x| x.pps_per_busy_cpu) / 1e6,
            med(o, |x| x.loss) * 100.0,
            lat.map_or("-".into(), |l| us(l.p50)),
            lat.map_or("-".into(), |l| us(l.p99)),
            lat.map_or("-".into(), |l| us(l.p999)),
        );
    }
    let r = ratios(outcomes);
    if !r.is_empty() {
        let _ = writeln!(s, "\nratios of median delivered packets per second");
        for (what, v) in r {
            let _ = writeln!(s, "  {what:<52} {v:>6.2}");
        }
    }
    s
}

fn contenders_json(outcomes: &[Outcome]) -> Vec<serde_json::Value> {
    outcomes
        .iter()
        .map(|o| {
            serde_json::json!({
                "id": o.kind.id(),
                "label": o.kind.label(),
                "unavailable": o.unavailable,
                "median_delivered_pps": med(o, |x| x.delivered_pps),
                "median_director_busy": med(o, |x| x.director_busy),
                "median_pps_per_busy_cpu": med(o, |x| x.pps_per_busy_cpu),
                "median_loss": med(o, |x| x.loss),
                "rate": o.rate,
                "flat_out": o.flat_out,
                "samples": o.samples,
                "latency": o.latency,
            })
        })
        .collect()
}

fn ratios_json(outcomes: &[Outcome]) -> Vec<serde_json::Value> {
    ratios(outcomes)
        .into_iter()
        .map(|(what, v)| serde_json::json!({ "ratio": what, "value": v }))
        .collect()
}

/// Every sample, the medians and the ratios of every phase, as JSON (`contenders` and
/// `ratios` are the first phase's).
pub fn json(
    cli: &Cli,
    phases: &[Phase],
    conns: &[(Kind, Option<String>, crate::connload::ConnOutcome)],
    memory: &[crate::memory::MemResult],
) -> String {
    let new_connections: Vec<serde_json::Value> = conns
        .iter()
        .map(|(k, why, o)| {
            serde_json::json!({
                "id": k.id(),
                "unavailable": why,
                "insert": o.insert,
                "flood": o.flood,
                "flood_fixed": o.flood_fixed,
            })
        })
        .collect();
    let first: &[Outcome] = phases.first().map_or(&[], |p| &p.outcomes);
    let phases_json: Vec<serde_json::Value> = phases
        .iter()
        .map(|p| {
            serde_json::json!({
                "name": p.name(),
                "ipv6": p.ipv6,
                "placement": p.placement.name(),
                "size": p.size,
                "contenders": contenders_json(&p.outcomes),
                "ratios": ratios_json(&p.outcomes),
            })
        })
        .collect();
    let v = serde_json::json!({
        "traffic": cli.traffic,
        "size": cli.size,
        "flows": cli.flows,
        "rounds": cli.rounds,
        "duration": cli.duration,
        "latency_fraction": cli.latency_fraction,
        "contenders": contenders_json(first),
        "ratios": ratios_json(first),
        "phases": phases_json,
        "new_connections": new_connections,
        "memory": memory,
    });
    serde_json::to_string_pretty(&v).unwrap_or_default() + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median([3.0, 1.0, 2.0].into_iter()), 2.0);
        assert_eq!(median([4.0, 1.0, 2.0, 3.0].into_iter()), 2.5);
        assert_eq!(median(std::iter::empty()), 0.0);
    }
}
