//! `xvsadm top`: a live view of services and real servers (rates, connections, weight and
//! health: up, down, drained), the daemon's frame counters and drops, refreshed every second.

use crate::client::Client;
use ratatui::Terminal;
use ratatui::backend::{Backend, CrosstermBackend, TestBackend};
use ratatui::crossterm::ExecutableCommand;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyModifiers};
use ratatui::crossterm::terminal;
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Paragraph, Row, Table, Wrap};
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};
use xvs_control::health_listing;
use xvs_control::proto::{HealthReply, ListReply, Request};

/// What one screen shows.
struct Sample {
    list: ListReply,
    stats: Value,
    health: HealthReply,
}

fn fetch(socket: &Path) -> Result<Sample, String> {
    let mut c = Client::connect(socket)?;
    Ok(Sample {
        list: c.get(Request::List)?,
        stats: c.call(Request::Stats)?,
        health: c.get(Request::Health)?,
    })
}

/// 1234567 → "1.2M".
fn human(v: u64) -> String {
    match v {
        0..1_000 => v.to_string(),
        1_000..1_000_000 => format!("{:.1}K", v as f64 / 1e3),
        1_000_000..1_000_000_000 => format!("{:.1}M", v as f64 / 1e6),
        _ => format!("{:.1}G", v as f64 / 1e9),
    }
}

fn header(s: &Sample) -> Vec<Line<'static>> {
    let st = &s.stats;
    let u = |k: &str| st[k].as_u64().unwrap_or(0);
    let up = u("uptime_ms") / 1000;
    let mut drops: Vec<String> = st["drops"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(_, v)| v.as_u64().unwrap_or(0) > 0)
                .map(|(k, v)| format!("{k}={}", human(v.as_u64().unwrap_or(0))))
                .collect()
        })
        .unwrap_or_default();
    if drops.is_empty() {
        drops.push("none".into());
    }
    let workers: Vec<String> = st["workers"]
        .as_array()
        .map(|ws| {
            ws.iter()
                .enumerate()
                .map(|(i, w)| {
                    format!(
                        "w{i} rx {} tx {}",
                        human(w["rx"].as_u64().unwrap_or(0)),
                        human(w["tx"].as_u64().unwrap_or(0))
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    vec![
        Line::from(format!(
            "xvsd up {}h{:02}m{:02}s  generation {}  conn table {}/{}",
            up / 3600,
            up / 60 % 60,
            up % 60,
            u("generation"),
            human(st["conn_table"]["entries"].as_u64().unwrap_or(0)),
            human(st["conn_table"]["capacity"].as_u64().unwrap_or(0)),
        )),
        Line::from(format!(
            "conns created {} evicted {} expired {}  frames rx {} tx {} to host {}",
            human(u("conns_created")),
            human(u("conns_evicted")),
            human(u("conns_expired")),
            human(u("rx_frames")),
            human(u("tx_frames")),
            human(u("passed")),
        )),
        Line::from(workers.join("  ")),
        Line::from(format!("drops: {}", drops.join(" "))),
    ]
}

/// Every column's text per row (service rows bold).
fn rows(s: &Sample) -> Vec<(Vec<String>, bool)> {
    let mut out = Vec::new();
    let mut svcs: Vec<_> = s.list.services.iter().collect();
    svcs.sort_by_key(|v| xvs_control::change::service_order(&v.service.0));
    for v in svcs {
        let (act, inact) = v
            .reals
            .iter()
            .fold((0, 0), |(a, i), r| (a + r.active, i + r.inactive));
        let r = &v.rates;
        out.push((
            vec![
                v.service.0.to_string(),
                v.spec.scheduler.clone(),
                String::new(),
                if s.health.withdrawn.contains(&v.service) {
                    "WITHDRAWN".into()
                } else {
                    String::new()
                },
                act.to_string(),
                inact.to_string(),
                human(r.cps),
                human(r.in_pps),
                human(r.out_pps),
                human(r.in_bps),
                human(r.out_bps),
            ],
            true,
        ));
        for rv in &v.reals {
            let x = &rv.rates;
            let port = rv.spec.port.unwrap_or(v.service.0.port());
            let name = xvs_core::service::fmt_addr_port(&rv.spec.addr, port);
            let health = s
                .health
                .servers
                .iter()
                .find(|h| h.service == v.service && h.real == name)
                .map_or_else(|| "-".into(), health_listing::state);
            out.push((
                vec![
                    format!("  -> {name}"),
                    xvs_core::service::Method::from(rv.spec.method)
                        .forward_name()
                        .to_string(),
                    rv.spec.weight.to_string(),
                    health,
                    rv.active.to_string(),
                    rv.inactive.to_string(),
                    human(x.cps),
                    human(x.in_pps),
                    human(x.out_pps),
                    human(x.in_bps),
                    human(x.out_bps),
                ],
                false,
            ));
        }
    }
    out
}

/// The table's columns in display order: title, width, and the rank in which they are kept
/// when the terminal is narrow (0 first; the service/real server column always).
const COLUMNS: [(&str, u16, u8); 11] = [
    ("Service / real server", 24, 0),
    ("Sched", 6, 8),
    ("Weight", 6, 3),
    ("Health", 10, 4),
    ("ActConn", 7, 1),
    ("InActConn", 9, 2),
    ("CPS", 6, 5),
    ("InPPS", 6, 9),
    ("OutPPS", 6, 10),
    ("InBPS", 6, 6),
    ("OutBPS", 6, 7),
];

/// The columns that fit `width` (inside the borders; one space between columns), by rank,
/// in display order: whole columns are dropped, never a header cut.
fn fitting(width: u16) -> Vec<usize> {
    let mut by_rank: Vec<usize> = (0..COLUMNS.len()).collect();
    by_rank.sort_by_key(|&i| COLUMNS[i].2);
    let mut used = 0u16;
    let mut keep = Vec::new();
    for i in by_rank {
        let w = COLUMNS[i].1 + u16::from(!keep.is_empty());
        if used + w > width && !keep.is_empty() {
            continue;
        }
        used += w;
        keep.push(i);
    }
    keep.sort_unstable();
    keep
}

fn draw<B: Backend>(term: &mut Terminal<B>, s: &Sample) -> Result<(), String> {
    term.draw(|f| {
        let [head, body, foot] = Layout::vertical([
            Constraint::Length(6),
            Constraint::Min(3),
            Constraint::Length(1),
        ])
        .areas(f.area());
        f.render_widget(
            Paragraph::new(header(s))
                .wrap(Wrap { trim: true })
                .block(Block::bordered().title(" xvs ")),
            head,
        );
        let keep = fitting(body.width.saturating_sub(2));
        let widths: Vec<Constraint> = keep
            .iter()
            .map(|&i| {
                if i == 0 {
                    Constraint::Min(COLUMNS[0].1)
                } else {
                    Constraint::Length(COLUMNS[i].1)
                }
            })
            .collect();
        let titles: Vec<&str> = keep.iter().map(|&i| COLUMNS[i].0).collect();
        let rows: Vec<Row<'static>> = rows(s)
            .into_iter()
            .map(|(cells, bold)| {
                let r = Row::new(keep.iter().map(|&i| cells[i].clone()).collect::<Vec<_>>());
                if bold {
                    r.style(Style::default().add_modifier(Modifier::BOLD))
                } else {
                    r
                }
            })
            .collect();
        let table = Table::new(rows, widths)
            .header(Row::new(titles).style(Style::default().add_modifier(Modifier::REVERSED)))
            .block(Block::bordered().title(" services "));
        f.render_widget(table, body);
        f.render_widget(
            Paragraph::new("q quits · rates are IPVS estimates over 2 s samples"),
            foot,
        );
    })
    .map(|_| ())
    .map_err(|e| e.to_string())
}

/// Runs the view until q, Esc or Ctrl-C; with `once`, prints one screen and returns.
pub fn run(socket: &Path, once: bool, interval_ms: u64) -> Result<(), String> {
    if once {
        let s = fetch(socket)?;
        let height = 10 + u16::try_from(rows(&s).len()).unwrap_or(200).min(200);
        // The terminal's width when there is one ($COLUMNS), else 80.
        let width = std::env::var("COLUMNS")
            .ok()
            .and_then(|c| c.parse::<u16>().ok())
            .or_else(|| terminal::size().ok().map(|(w, _)| w))
            .unwrap_or(80)
            .clamp(40, 400);
        let mut term = Terminal::new(TestBackend::new(width, height)).map_err(|e| e.to_string())?;
        draw(&mut term, &s)?;
        let buf = term.backend().buffer();
        for y in 0..buf.area.height {
            let line: String = (0..buf.area.width)
                .map(|x| buf[(x, y)].symbol().to_string())
                .collect();
            crate::outln!("{}", line.trim_end());
        }
        return Ok(());
    }
    terminal::enable_raw_mode().map_err(|e| format!("not a terminal: {e}"))?;
    let mut stdout = std::io::stdout();
    let _ = stdout.execute(terminal::EnterAlternateScreen);
    let result = (|| -> Result<(), String> {
        let mut term =
            Terminal::new(CrosstermBackend::new(std::io::stdout())).map_err(|e| e.to_string())?;
        let every = Duration::from_millis(interval_ms);
        loop {
            let s = fetch(socket)?;
            draw(&mut term, &s)?;
            let t = Instant::now();
            while t.elapsed() < every {
                if event::poll(every.saturating_sub(t.elapsed())).map_err(|e| e.to_string())? {
                    if let Event::Key(k) = event::read().map_err(|e| e.to_string())? {
                        let ctrl_c = k.code == KeyCode::Char('c')
                            && k.modifiers.contains(KeyModifiers::CONTROL);
                        if matches!(k.code, KeyCode::Char('q') | KeyCode::Esc) || ctrl_c {
                            return Ok(());
                        }
                    }
                }
            }
        }
    })();
    let _ = terminal::disable_raw_mode();
    let _ = std::io::stdout().execute(terminal::LeaveAlternateScreen);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eighty_columns_keep_the_most_useful_columns_whole() {
        let keep: Vec<&str> = fitting(78).iter().map(|&i| COLUMNS[i].0).collect();
        assert_eq!(
            keep,
            [
                "Service / real server",
                "Weight",
                "Health",
                "ActConn",
                "InActConn",
                "CPS",
                "InBPS"
            ]
        );
        let used: u16 = fitting(78).iter().map(|&i| COLUMNS[i].1 + 1).sum::<u16>() - 1;
        assert!(used <= 78, "{used}");
        assert_eq!(fitting(400).len(), COLUMNS.len(), "wide: every column");
        assert_eq!(fitting(10), [0], "narrow: the names only");
        for (title, width, _) in COLUMNS {
            assert!(
                title.len() as u16 <= width || title.starts_with("Service"),
                "{title}"
            );
        }
    }
}
