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
use ratatui::widgets::{Block, Paragraph, Row, Table};
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
            "xvsd up {}h{:02}m{:02}s  generation {}  conn table {}/{}  conns created {} evicted {} expired {}",
            up / 3600,
            up / 60 % 60,
            up % 60,
            u("generation"),
            human(st["conn_table"]["entries"].as_u64().unwrap_or(0)),
            human(st["conn_table"]["capacity"].as_u64().unwrap_or(0)),
            human(u("conns_created")),
            human(u("conns_evicted")),
            human(u("conns_expired")),
        )),
        Line::from(format!(
            "frames rx {} tx {} to host {}   {}",
            human(u("rx_frames")),
            human(u("tx_frames")),
            human(u("passed")),
            workers.join("  ")
        )),
        Line::from(format!("drops: {}", drops.join(" "))),
    ]
}

fn rows(s: &Sample) -> Vec<Row<'static>> {
    let mut out = Vec::new();
    let mut svcs: Vec<_> = s.list.services.iter().collect();
    svcs.sort_by_key(|v| xvs_control::change::service_order(&v.service.0));
    for v in svcs {
        let (act, inact) = v
            .reals
            .iter()
            .fold((0, 0), |(a, i), r| (a + r.active, i + r.inactive));
        let r = &v.rates;
        out.push(
            Row::new(vec![
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
            ])
            .style(Style::default().add_modifier(Modifier::BOLD)),
        );
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
            out.push(Row::new(vec![
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
            ]));
        }
    }
    out
}

fn draw<B: Backend>(term: &mut Terminal<B>, s: &Sample) -> Result<(), String> {
    term.draw(|f| {
        let [head, body, foot] = Layout::vertical([
            Constraint::Length(5),
            Constraint::Min(3),
            Constraint::Length(1),
        ])
        .areas(f.area());
        f.render_widget(
            Paragraph::new(header(s)).block(Block::bordered().title(" xvs ")),
            head,
        );
        let widths = [
            Constraint::Min(30),
            Constraint::Length(8),
            Constraint::Length(6),
            Constraint::Length(12),
            Constraint::Length(9),
            Constraint::Length(9),
            Constraint::Length(7),
            Constraint::Length(7),
            Constraint::Length(7),
            Constraint::Length(7),
            Constraint::Length(7),
        ];
        let titles = [
            "Service / real server",
            "Sched",
            "Weight",
            "Health",
            "ActConn",
            "InActConn",
            "CPS",
            "InPPS",
            "OutPPS",
            "InBPS",
            "OutBPS",
        ];
        let table = Table::new(rows(s), widths)
            .header(
                Row::new(titles.to_vec()).style(Style::default().add_modifier(Modifier::REVERSED)),
            )
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
        let height = 8 + u16::try_from(rows(&s).len()).unwrap_or(200).min(200);
        let mut term = Terminal::new(TestBackend::new(140, height)).map_err(|e| e.to_string())?;
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
