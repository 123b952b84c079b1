//! The summary: every contender's lossless and flat-out rate in every phase side by side, the
//! floods' background delivery, and the throughput targets checked against this run.

use crate::connload::{ConnOutcome, background_delivery};
use crate::contender::{Kind, Method};
use crate::measure::Sample;
use crate::table::{find, med, median};
use crate::{Outcome, Phase};
use std::fmt::Write;

fn flat(outcomes: &[Outcome], kind: Kind) -> Option<f64> {
    outcomes
        .iter()
        .find(|o| o.kind == kind)
        .and_then(|o| o.flat_out.as_ref())
        .map(|s| s.delivered_pps)
}

fn p99(outcomes: &[Outcome], kind: Kind) -> Option<u64> {
    outcomes
        .iter()
        .find(|o| o.kind == kind)
        .and_then(|o| o.latency.as_ref())
        .and_then(|s| s.latency.as_ref())
        .map(|l| l.p99)
}

fn bg(v: &[Sample]) -> Option<f64> {
    (!v.is_empty()).then(|| median(v.iter().map(background_delivery)))
}

/// A target line: what, measured, wanted, met?
fn target(s: &mut String, what: &str, got: Option<f64>, want: f64) {
    match got {
        Some(g) => {
            let _ = writeln!(
                s,
                "  {what:<68} {g:>7.2}  (≥ {want:.2})  {}",
                if g >= want { "met" } else { "missed" }
            );
        }
        None => {
            let _ = writeln!(s, "  {what:<68}     n/a  (a side did not run)");
        }
    }
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

/// The summary and targets (`quick`: every figure is the quick rate, not a limit).
pub fn render(
    phases: &[Phase],
    conns: &[(Kind, Option<String>, ConnOutcome)],
    quick: bool,
) -> String {
    let mut s = String::new();
    if phases.is_empty() {
        return s;
    }
    let _ = writeln!(
        s,
        "\nsummary: Mpps delivered at ≤1% loss / flat out, per phase\n"
    );
    let _ = write!(s, "{:<26}", "contender");
    for p in phases {
        let head = format!("IPv{} {}", if p.ipv6 { 6 } else { 4 }, p.placement.name());
        let _ = write!(s, " {head:>17}");
    }
    let _ = writeln!(s, " {:>11} {:>11}", "flood flat", "flood fixed");
    for o in &phases[0].outcomes {
        if o.unavailable.is_some() {
            continue;
        }
        let _ = write!(s, "{:<26}", o.kind.label());
        for p in phases {
            let cell = match p.outcomes.iter().find(|x| x.kind == o.kind) {
                Some(x) if !x.samples.is_empty() => format!(
                    "{:.3} / {:.3}",
                    med(x, |v| v.delivered_pps) / 1e6,
                    x.flat_out.as_ref().map_or(0.0, |f| f.delivered_pps) / 1e6
                ),
                _ => "-".into(),
            };
            let _ = write!(s, " {cell:>17}");
        }
        let c = conns.iter().find(|c| c.0 == o.kind && c.1.is_none());
        let pct = |v: Option<f64>| v.map_or("-".into(), |x| format!("{:.1}%", x * 100.0));
        let _ = writeln!(
            s,
            " {:>11} {:>11}",
            pct(c.and_then(|c| bg(&c.2.flood))),
            pct(c.and_then(|c| bg(&c.2.flood_fixed)))
        );
    }
    let _ = writeln!(
        s,
        "\ntargets (this run){}\n",
        if quick {
            ": quick mode offers one rate to everyone, so these check the machinery, not the limits"
        } else {
            ""
        }
    );
    for p in phases.iter().filter(|p| !p.ipv6) {
        let o = &p.outcomes;
        let name = p.placement.name();
        let worst = o
            .iter()
            .filter(|x| matches!(x.kind, Kind::Xvs(..)) && !x.samples.is_empty())
            .filter_map(|x| {
                let lossless = med(x, |v| v.delivered_pps);
                let f = x.flat_out.as_ref()?.delivered_pps;
                (lossless > 0.0).then_some(f / lossless)
            })
            .fold(None, |m: Option<f64>, r| Some(m.map_or(r, |m| m.min(r))));
        target(
            &mut s,
            &format!("[{name}] every xvs mode: flat out ÷ its own lossless (worst)"),
            worst,
            0.9,
        );
        let dr = Kind::Xvs(Method::Dr, 1);
        let nat = Kind::Xvs(Method::Nat, 1);
        for (what, a, b, want) in [
            ("DR ÷ forward-only", dr, Kind::XvsForwardOnly, 0.95),
            ("DR ÷ nftables DNAT", dr, Kind::NftDnat, 1.3),
            ("NAT ÷ nftables DNAT", nat, Kind::NftDnat, 1.2),
        ] {
            target(
                &mut s,
                &format!("[{name}] {what}, lossless"),
                ratio(find(o, a), find(o, b)),
                want,
            );
            target(
                &mut s,
                &format!("[{name}] {what}, flat out"),
                ratio(flat(o, a), flat(o, b)),
                want,
            );
        }
        // Latency: kernel forwarding's p99 over xvs DR's, so that "≥ 0.5" reads as
        // "xvs's p99 ≤ 2× the kernel's".
        let lat = match (p99(o, Kind::KernelForward), p99(o, dr)) {
            (Some(k), Some(x)) if x > 0 => Some(k as f64 / x as f64),
            _ => None,
        };
        target(
            &mut s,
            &format!("[{name}] kernel forwarding p99 ÷ xvs DR p99 (at 50% load)"),
            lat,
            0.5,
        );
    }
    for (kind, _, c) in conns.iter().filter(|c| c.1.is_none()) {
        if !matches!(kind, Kind::Xvs(..)) {
            continue;
        }
        for (how, v) in [("flat out", &c.flood), ("fixed rate", &c.flood_fixed)] {
            if v.is_empty() {
                continue;
            }
            target(
                &mut s,
                &format!(
                    "{}: established stream under a SYN flood {how}",
                    kind.label()
                ),
                bg(v),
                0.99,
            );
        }
    }
    s
}
