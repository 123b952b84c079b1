//! xvsd: the Linux Virtual Server on AF_XDP. See `xvsd --help`.

mod accounting;
mod alarms;
mod control;
mod control_loop;
mod director;
mod ha;
mod health;
mod jobs;
mod metrics;
mod neigh_grace;
mod netsync;
mod placement;
mod polling;
mod relink;
mod settings;
mod startup;
mod systemd;
mod views;
mod vips;
mod worker;

use clap::Parser;
use std::process::ExitCode;
use xvsd::cli;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    if let Some(path) = &cli.check_config {
        let (path, keepalived) = match (&cli.keepalived_conf, path.as_os_str().is_empty()) {
            (Some(k), true) => (k.clone(), true),
            (_, true) => {
                eprintln!("xvsd: --check-config needs a file (or --keepalived-conf FILE)");
                return ExitCode::from(2);
            }
            (_, false) => (path.clone(), false),
        };
        let checked = xvs_control::config::load_file(&path, keepalived).and_then(|(l, w)| {
            for w in w {
                eprintln!("xvsd: warning: {w}");
            }
            l.apply(
                xvs_control::config::DEFAULT_MAX_SERVICES,
                xvs_control::config::DEFAULT_MAX_REALS,
            )
        });
        return match checked {
            Ok(a) => {
                println!(
                    "{}: OK ({} services)",
                    path.display(),
                    a.services.services().count()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("xvsd: {e}");
                ExitCode::from(2)
            }
        };
    }
    let settings = match settings::settings(&cli) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("xvsd: {e}");
            return ExitCode::from(2);
        }
    };
    // netlink-packet-route warns about attributes newer kernels grew: not ours to report.
    let filter = format!("{},netlink_packet_route=error", settings.log_level);
    let filter = match tracing_subscriber::EnvFilter::try_new(&filter) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("xvsd: log level '{}': {e}", settings.log_level);
            return ExitCode::from(2);
        }
    };
    init_logging(filter, cli.log_format);
    for w in &settings.warnings {
        tracing::warn!("{w}");
    }
    match startup::run(&settings) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("xvsd: {e}");
            ExitCode::from(1)
        }
    }
}

/// Logs to standard error: text or JSON lines. Under systemd (its journal on standard error,
/// `JOURNAL_STREAM` set) text lines carry no timestamp of their own: the journal stamps them.
fn init_logging(filter: tracing_subscriber::EnvFilter, format: cli::LogFormat) {
    let journal = std::env::var_os("JOURNAL_STREAM").is_some();
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        cli::LogFormat::Json => b.json().with_current_span(false).init(),
        cli::LogFormat::Text if journal => b.without_time().with_ansi(false).init(),
        cli::LogFormat::Text => b.with_ansi(terminal).init(),
    }
}
