//! The report's plots (SVG, drawn with plotters): delivered Mpps per contender, one-way latency
//! CDFs, and 1 against 2 workers per xvs mode.

use crate::Outcome;
use crate::contender::{Kind, Method};
use crate::table::median;
use plotters::prelude::*;
use std::path::Path;

fn e(err: impl std::fmt::Display) -> String {
    format!("drawing: {err}")
}

/// Draws `mpps.svg`, `latency-cdf.svg` and `workers.svg` into `dir`.
pub fn draw(dir: &Path, outcomes: &[Outcome]) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|err| format!("{}: {err}", dir.display()))?;
    let ran: Vec<&Outcome> = outcomes.iter().filter(|o| !o.samples.is_empty()).collect();
    mpps(&dir.join("mpps.svg"), &ran)?;
    latency(&dir.join("latency-cdf.svg"), &ran)?;
    workers(&dir.join("workers.svg"), &ran)?;
    Ok(())
}

fn mpps(path: &Path, ran: &[&Outcome]) -> Result<(), String> {
    let n = ran.len().max(1);
    let root = SVGBackend::new(path, (900, 60 + 34 * n as u32)).into_drawing_area();
    root.fill(&WHITE).map_err(e)?;
    let top = ran
        .iter()
        .flat_map(|o| o.samples.iter().map(|s| s.delivered_pps / 1e6))
        .fold(0.0f64, f64::max)
        .max(0.001)
        * 1.1;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Delivered packets per second (median, min–max)",
            ("sans-serif", 18),
        )
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(200)
        .build_cartesian_2d(0.0..top, (0..n).into_segmented())
        .map_err(e)?;
    let labels: Vec<String> = ran.iter().map(|o| o.kind.label()).collect();
    // Row y (from the bottom) shows contender n - 1 - y, so the table's order reads top down.
    let label = |v: &SegmentValue<usize>| match v {
        SegmentValue::CenterOf(y) => n
            .checked_sub(1 + y)
            .and_then(|i| labels.get(i))
            .cloned()
            .unwrap_or_default(),
        _ => String::new(),
    };
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(n)
        .y_label_formatter(&label)
        .x_desc("Mpps")
        .draw()
        .map_err(e)?;
    for (i, o) in ran.iter().enumerate() {
        let y = n - 1 - i;
        let d: Vec<f64> = o.samples.iter().map(|s| s.delivered_pps / 1e6).collect();
        let m = median(d.iter().copied());
        let (lo, hi) = (
            d.iter().copied().fold(f64::INFINITY, f64::min),
            d.iter().copied().fold(0.0, f64::max),
        );
        let color = if o.kind.is_kernel() {
            RGBColor(150, 150, 150)
        } else {
            RGBColor(40, 100, 180)
        };
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [
                    (0.0, SegmentValue::Exact(y)),
                    (m, SegmentValue::Exact(y + 1)),
                ],
                color.filled(),
            )))
            .map_err(e)?;
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![
                    (lo, SegmentValue::CenterOf(y)),
                    (hi, SegmentValue::CenterOf(y)),
                ],
                BLACK.stroke_width(2),
            )))
            .map_err(e)?;
    }
    root.present().map_err(e)
}

fn latency(path: &Path, ran: &[&Outcome]) -> Result<(), String> {
    let curves: Vec<(String, Vec<(f64, f64)>)> = ran
        .iter()
        .filter_map(|o| {
            let l = o.latency.as_ref()?.latency.as_ref()?;
            let pts = l
                .cdf
                .iter()
                .map(|(q, ns)| ((*ns as f64 / 1000.0).max(0.1), *q))
                .collect();
            Some((o.kind.label(), pts))
        })
        .collect();
    let root = SVGBackend::new(path, (900, 520)).into_drawing_area();
    root.fill(&WHITE).map_err(e)?;
    let hi = curves
        .iter()
        .flat_map(|(_, p)| p.iter().map(|x| x.0))
        .fold(1.0f64, f64::max)
        * 1.5;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "One-way latency CDF at a fixed fraction of each maximum",
            ("sans-serif", 18),
        )
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(50)
        .build_cartesian_2d((1.0f64..hi).log_scale(), 0.0f64..1.0)
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc("µs (log scale)")
        .y_desc("fraction of packets")
        .draw()
        .map_err(e)?;
    for (i, (label, pts)) in curves.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))
            .map_err(e)?
            .label(label.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(e)?;
    root.present().map_err(e)
}

fn workers(path: &Path, ran: &[&Outcome]) -> Result<(), String> {
    let methods = [Method::Dr, Method::Nat, Method::Tun, Method::FullNat];
    let get = |k: Kind| {
        ran.iter().find(|o| o.kind == k).map_or(0.0, |o| {
            median(o.samples.iter().map(|s| s.delivered_pps / 1e6))
        })
    };
    let bars: Vec<(f64, f64)> = methods
        .iter()
        .map(|&m| (get(Kind::Xvs(m, 1)), get(Kind::Xvs(m, 2))))
        .collect();
    let top = bars.iter().map(|(a, b)| a.max(*b)).fold(0.001f64, f64::max) * 1.15;
    let root = SVGBackend::new(path, (700, 420)).into_drawing_area();
    root.fill(&WHITE).map_err(e)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "xvs: 1 worker (light) against 2 workers (dark), median Mpps",
            ("sans-serif", 18),
        )
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(50)
        .build_cartesian_2d(0.0f64..4.0, 0.0..top)
        .map_err(e)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .y_desc("Mpps")
        .draw()
        .map_err(e)?;
    // The mode's name above each pair of bars (the x axis has no numbers to show).
    chart
        .draw_series(
            ["DR", "NAT", "TUN", "FullNAT"]
                .iter()
                .enumerate()
                .map(|(i, name)| {
                    Text::new(
                        (*name).to_string(),
                        (i as f64 + 0.4, top * 0.97),
                        ("sans-serif", 15),
                    )
                }),
        )
        .map_err(e)?;
    let one = RGBColor(120, 160, 210);
    let two = RGBColor(30, 70, 140);
    for (i, (a, b)) in bars.iter().enumerate() {
        let x = i as f64;
        chart
            .draw_series([
                Rectangle::new([(x + 0.15, 0.0), (x + 0.48, *a)], one.filled()),
                Rectangle::new([(x + 0.52, 0.0), (x + 0.85, *b)], two.filled()),
            ])
            .map_err(e)?;
    }
    root.present().map_err(e)
}
