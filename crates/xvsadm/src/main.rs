//! xvsadm: ipvsadm's command line and listings for xvsd, plus `--reload`, `top`, `trace`,
//! `health` and `check`.
//! Exit status: 0 on success, 1 when xvsd refuses or cannot be reached, 2 for a bad command
//! line.

mod client;
mod ha;
mod output;
mod stats;
mod top;

use clap::Parser;
use client::Client;
use std::io::Read;
use std::process::ExitCode;
use xvs_control::proto::{ApplyReply, ConnsReply, HealthReply, ListReply, Request, TraceReply};
use xvs_control::{health_listing, listing};
use xvsadm::args::{self, Action, Args};

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    if let Some(e) = args::unsupported(&argv) {
        eprintln!("{e}");
        return ExitCode::from(2);
    }
    args::enable_names();
    let a = Args::parse();
    let action = match a.action() {
        Ok(x) => x,
        Err(e) => {
            eprintln!("{e}");
            eprintln!("Try `xvsadm -h' or 'xvsadm --help' for more information.");
            return ExitCode::from(2);
        }
    };
    match run(&a, action) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(1)
        }
    }
}

fn run(a: &Args, action: Action) -> Result<(), String> {
    if action == Action::Version {
        outln!(
            "xvsadm v{} (ipvsadm 1.31 command line and listings; xvsd control protocol v{})",
            env!("CARGO_PKG_VERSION"),
            xvs_control::proto::VERSION
        );
        return Ok(());
    }
    if let Action::Top { once, interval_ms } = action {
        return top::run(&a.socket, once, interval_ms);
    }
    if let Action::ConvertKeepalived(file) = &action {
        out!("{}", ha::convert(file)?);
        return Ok(());
    }
    let mut c = Client::connect(&a.socket)?;
    match action {
        Action::Apply(changes) => {
            c.get::<ApplyReply>(Request::Apply { changes })?;
        }
        Action::Restore => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|e| format!("cannot read the rules: {e}"))?;
            let changes =
                args::restore_lines(&text).map_err(|e| format!("{e}\nnothing restored"))?;
            c.get::<ApplyReply>(Request::Apply { changes })
                .map_err(|e| format!("{e}\nnothing restored"))?;
        }
        Action::List { format, only, json } => {
            let l: ListReply = c.get(Request::List)?;
            if json {
                outln!(
                    "{}",
                    serde_json::to_string_pretty(&l).map_err(|e| e.to_string())?
                );
            } else {
                // Without -n, host and service names, as ipvsadm lists them.
                let mut format = format;
                if !a.numeric {
                    format.names = Some(listing::Namer(args::name_of));
                }
                let text = listing::list(&l, format, only.as_ref())
                    .ok_or_else(|| "No such service".to_string())?;
                out!("{text}");
            }
        }
        Action::Conns { persistent } => {
            let r: ConnsReply = c.get(Request::Conns { limit: None })?;
            let names = (!a.numeric).then_some(listing::Namer(args::name_of));
            out!("{}", listing::conns(&r, persistent, names));
            if r.truncated {
                eprintln!("(listing truncated)");
            }
        }
        Action::Timeouts => {
            let l: ListReply = c.get(Request::List)?;
            out!("{}", listing::timeouts(l.timeouts));
        }
        Action::Zero(service) => {
            c.call(Request::Zero { service })?;
        }
        Action::Save => {
            let l: ListReply = c.get(Request::List)?;
            out!("{}", listing::save(&l));
        }
        Action::Reload(path) => {
            let r: ApplyReply = c.get(Request::Reload { path })?;
            if r.applied.is_empty() {
                outln!("nothing changed (generation {})", r.generation);
            } else {
                for l in &r.applied {
                    outln!("{l}");
                }
                outln!(
                    "{} changes applied (generation {})",
                    r.applied.len(),
                    r.generation
                );
            }
        }
        Action::Trace(q) => {
            let r: TraceReply = c.get(Request::Trace(q))?;
            let opt = |o: &Option<String>| o.clone().unwrap_or_else(|| "-".into());
            outln!("verdict: {}", r.verdict);
            outln!("service: {}", opt(&r.service));
            outln!(
                "real:    {}{}",
                opt(&r.real),
                r.method.map(|m| format!(" ({m})")).unwrap_or_default()
            );
            outln!("egress:  {}", opt(&r.egress));
            outln!("why:     {}", r.reason);
        }
        Action::Health { json } => {
            let r: HealthReply = c.get(Request::Health)?;
            if json {
                outln!(
                    "{}",
                    serde_json::to_string_pretty(&r).map_err(|e| e.to_string())?
                );
            } else {
                out!("{}", health_listing::render(&r));
            }
        }
        Action::Stats { json } => {
            let v = c.call(Request::Stats)?;
            if json {
                outln!(
                    "{}",
                    serde_json::to_string_pretty(&v).map_err(|e| e.to_string())?
                );
            } else {
                out!("{}", stats::render(&v));
            }
        }
        Action::Vrrp { json } => {
            let r: xvs_control::proto::VrrpReply = c.get(Request::Vrrp)?;
            if json {
                outln!(
                    "{}",
                    serde_json::to_string_pretty(&r).map_err(|e| e.to_string())?
                );
            } else {
                out!("{}", ha::vrrp_table(&r));
            }
        }
        Action::StartDaemon(spec) => {
            c.call(Request::StartDaemon(spec))?;
        }
        Action::StopDaemon(role) => {
            c.call(Request::StopDaemon { role })?;
        }
        Action::Daemons => {
            let r: xvs_control::proto::DaemonReply = c.get(Request::Daemon)?;
            out!("{}", ha::daemon_lines(&r));
        }
        Action::ConvertKeepalived(_) => {}
        Action::SetCheck {
            service,
            addr,
            port,
            check,
        } => {
            c.call(Request::SetCheck {
                service,
                addr,
                port,
                check,
            })?;
        }
        Action::Version | Action::Top { .. } => {}
    }
    Ok(())
}
