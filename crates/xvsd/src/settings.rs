//! Everything the daemon runs with: the configuration file and the command line merged, with
//! the defaults filled in.

use crate::cli::Cli;
use crate::metrics;
use crate::polling::PollSettings;
use std::path::PathBuf;
use xvs_control::config::{BindModeConfig, XdpModeConfig};
use xvs_control::config::{
    DEFAULT_MAX_REALS, DEFAULT_MAX_SERVICES, DEFAULT_RING_SIZE, DEFAULT_UMEM_FRAMES,
};
use xvs_core::Options;
use xvs_core::conn::Timeouts;
use xvs_core::service::ServiceTable;
use xvs_io::steering::{SynBudget, XdpMode};
use xvs_io::xsk::BindMode;

/// Default control socket.
pub const DEFAULT_SOCKET: &str = "/run/xvs/xvsd.sock";
/// Default connection-table size.
pub const DEFAULT_TABLE: usize = 1 << 20;
/// Default budget of new TCP connections per receive queue and second: a quarter of what one
/// worker inserted at most with its I/O on the lab machine (about 420 000 SYNs/s in DR mode),
/// so that a SYN flood leaves a worker most of its time for established traffic.
pub const DEFAULT_SYN_BUDGET: u64 = 100_000;
/// Default burst above the SYN budget.
pub const DEFAULT_SYN_BURST: u64 = 2048;

/// Everything the daemon runs with, after merging the file and the flags.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Served interfaces.
    pub interfaces: Vec<String>,
    /// Queues (= workers) if given; by default every receive queue.
    pub queues: Option<u32>,
    /// Cores to pin to.
    pub cores: Vec<usize>,
    /// XDP mode.
    pub xdp_mode: XdpMode,
    /// Bind mode.
    pub bind_mode: BindMode,
    /// Polling.
    pub poll: PollSettings,
    /// New-connection budget per receive queue.
    pub syn_budget: SynBudget,
    /// Connection-table size.
    pub conn_table_size: usize,
    /// UMEM frames per served interface and worker.
    pub umem_frames: u32,
    /// Receive/transmit ring entries.
    pub ring_size: u32,
    /// Manage VIP addresses.
    pub manage_vips: bool,
    /// Announce the VIPs of services that are up to a routing daemon.
    pub announce_vips: bool,
    /// Control socket.
    pub control_socket: PathBuf,
    /// Services from the file.
    pub services: ServiceTable,
    /// Timeouts.
    pub timeouts: Timeouts,
    /// Behaviour switches.
    pub options: Options,
    /// The configuration file (reloads read it again).
    pub config_path: Option<PathBuf>,
    /// The file is a keepalived.conf.
    pub keepalived: bool,
    /// What reading the file warned about (keepalived keywords xvs does not implement).
    pub warnings: Vec<String>,
    /// VRRP instances, scripts, sync groups.
    pub vrrp: xvs_control::config::ha::VrrpConfig,
    /// Connection sync.
    pub sync: Option<xvs_control::config::ha::SyncConfig>,
    /// Where the Prometheus endpoint listens (off if `None`).
    pub metrics: Option<std::net::SocketAddr>,
    /// Health checks and policies.
    pub health: xvs_control::check::Health,
    /// `--forward-only IF=MAC,…`: interfaces and destination MACs.
    pub forward_only: Vec<(String, [u8; 6])>,
    /// `--force`: replace an XDP program that is not xvs's.
    pub force: bool,
    /// The log level or filter (`--log-level`, `log_level:`; `info` by default).
    pub log_level: String,
}

/// Parses `IF=MAC` (`--forward-only`), checking IF is one of the served interfaces.
fn parse_forward_only(s: &str, interfaces: &[String]) -> Result<(String, [u8; 6]), String> {
    let bad = || format!("--forward-only: '{s}' is not IF=MAC (ext1=02:00:00:00:00:11)");
    let (ifname, mac) = s.split_once('=').ok_or_else(bad)?;
    let mac = xvs_wire::MacAddr::parse(mac).ok_or_else(bad)?;
    if !interfaces.iter().any(|i| i == ifname) {
        return Err(format!(
            "--forward-only: {ifname} is not one of the served interfaces ({})",
            interfaces.join(", ")
        ));
    }
    Ok((ifname.to_string(), mac.0))
}

/// Merges the configuration file (if any) and the command line.
pub fn settings(cli: &Cli) -> Result<Settings, String> {
    settings_from(cli, std::path::Path::new(crate::cli::DEFAULT_CONFIG))
}

/// [`settings`], with `default_config` read when the command line names no configuration
/// and no interface.
fn settings_from(cli: &Cli, default_config: &std::path::Path) -> Result<Settings, String> {
    let (path, keepalived) = match (&cli.config, &cli.keepalived_conf) {
        (Some(p), _) => (Some(p.clone()), false),
        (None, Some(k)) => (Some(k.clone()), true),
        // Interfaces alone: no services until xvsadm adds them.
        (None, None) if !cli.interfaces.is_empty() => (None, false),
        (None, None) => {
            let p = default_config.to_path_buf();
            if !p.exists() {
                return Err(format!(
                    "no configuration: {} does not exist (give --config FILE, \
                     --keepalived-conf FILE, or --interface IF to start without services)",
                    p.display()
                ));
            }
            (Some(p), false)
        }
    };
    let mut warnings = Vec::new();
    let loaded = match &path {
        Some(p) => {
            let (l, w) =
                xvs_control::config::load_file(p, keepalived).map_err(|e| e.to_string())?;
            warnings = w;
            Some(l)
        }
        None => None,
    };
    let (file_cfg, applied) = match &loaded {
        Some(l) => (
            l.config.clone(),
            Some(
                l.apply(DEFAULT_MAX_SERVICES, DEFAULT_MAX_REALS)
                    .map_err(|e| e.to_string())?,
            ),
        ),
        None => (xvs_control::Config::default(), None),
    };
    let interfaces = if keepalived {
        // keepalived.conf: those given, then those the file names.
        let mut v = cli.interfaces.clone();
        for i in &file_cfg.interfaces {
            if !v.contains(i) {
                v.push(i.clone());
            }
        }
        v
    } else if cli.interfaces.is_empty() {
        file_cfg.interfaces.clone()
    } else {
        cli.interfaces.clone()
    };
    if interfaces.is_empty() {
        return Err("no interface to serve: give --interface IF (repeatable) or `interfaces:` in the configuration".into());
    }
    let xdp_mode = match cli.xdp_mode.or(file_cfg.xdp_mode).unwrap_or_default() {
        XdpModeConfig::Auto => XdpMode::Auto,
        XdpModeConfig::Native => XdpMode::Native,
        XdpModeConfig::Generic => XdpMode::Generic,
    };
    let bind_mode = match cli.bind_mode.or(file_cfg.bind_mode).unwrap_or_default() {
        BindModeConfig::Auto => BindMode::Auto,
        BindModeConfig::Copy => BindMode::Copy,
        BindModeConfig::Zerocopy => BindMode::ZeroCopy,
    };
    let mode = cli.poll_mode.or(file_cfg.poll_mode).unwrap_or_default();
    let d = PollSettings::default();
    let fp = file_cfg.polling;
    let poll = PollSettings {
        mode,
        sleep_us: cli.poll_sleep_us.or(fp.sleep_us).unwrap_or(d.sleep_us),
        busy_poll_us: fp.busy_poll_us.unwrap_or(d.busy_poll_us),
        busy_poll_budget: fp.busy_poll_budget.unwrap_or(d.busy_poll_budget),
        defer_hard_irqs: fp.defer_hard_irqs.unwrap_or(d.defer_hard_irqs),
        gro_flush_timeout_us: fp.gro_flush_timeout_us.unwrap_or(d.gro_flush_timeout_us),
        coalesce_us: cli.coalesce_us.or(fp.coalesce_us).unwrap_or(d.coalesce_us),
    };
    let syn_budget = SynBudget {
        per_second: cli
            .syn_budget
            .or(file_cfg.syn_budget)
            .unwrap_or(DEFAULT_SYN_BUDGET),
        burst: file_cfg.syn_burst.unwrap_or(DEFAULT_SYN_BURST),
    };
    let forward_only = cli
        .forward_only
        .iter()
        .map(|f| parse_forward_only(f, &interfaces))
        .collect::<Result<Vec<_>, String>>()?;
    let queues = cli.queues.or(file_cfg.queues);
    if queues == Some(0) {
        return Err("--queues must be at least 1".into());
    }
    let umem_frames = cli
        .umem_frames
        .or(file_cfg.umem_frames)
        .unwrap_or(DEFAULT_UMEM_FRAMES);
    xvs_control::config::check_umem_frames(umem_frames)
        .map_err(|e| format!("--umem-frames: {e}"))?;
    let ring_size = cli
        .ring_size
        .or(file_cfg.ring_size)
        .unwrap_or(DEFAULT_RING_SIZE);
    xvs_control::config::check_ring_size(ring_size).map_err(|e| format!("--ring-size: {e}"))?;
    let (services, timeouts, health) = match applied {
        Some(a) => (a.services, a.timeouts, a.health),
        None => (
            ServiceTable::new(DEFAULT_MAX_SERVICES, DEFAULT_MAX_REALS),
            Timeouts::default(),
            Vec::new(),
        ),
    };
    Ok(Settings {
        interfaces,
        queues,
        cores: if cli.cores.is_empty() {
            file_cfg.cores.clone()
        } else {
            cli.cores.clone()
        },
        xdp_mode,
        bind_mode,
        poll,
        syn_budget,
        conn_table_size: cli
            .conn_table_size
            .or(file_cfg.conn_table_size)
            .unwrap_or(DEFAULT_TABLE)
            .max(64),
        umem_frames,
        ring_size,
        manage_vips: cli.manage_vips || file_cfg.manage_vips,
        announce_vips: cli.announce_vips || file_cfg.announce_vips,
        control_socket: cli
            .control_socket
            .clone()
            .or(file_cfg.control_socket.map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET)),
        services,
        timeouts,
        options: Options {
            expire_nodest_conn: file_cfg.expire_nodest_conn,
            ..Options::default()
        },
        config_path: path,
        keepalived,
        warnings,
        vrrp: file_cfg.vrrp.clone(),
        sync: file_cfg.sync.clone(),
        health,
        forward_only,
        force: cli.force,
        log_level: match cli.log_level.clone().or(file_cfg.log_level.clone()) {
            Some(l) => {
                xvs_control::config::apply::check_log_level(&l)?;
                l
            }
            None => "info".into(),
        },
        metrics: match cli.metrics.as_deref().or(file_cfg.metrics.as_deref()) {
            Some(a) => Some(a.parse().map_err(|_| {
                format!(
                    "metrics address '{a}' is not ADDR:PORT (e.g. {})",
                    metrics::DEFAULT_ADDR
                )
            })?),
            None => None,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn of(args: &[&str]) -> Result<Settings, String> {
        settings(&Cli::parse_from(
            std::iter::once("xvsd").chain(args.iter().copied()),
        ))
    }

    #[test]
    fn the_command_line_alone_gets_the_defaults() {
        let s = of(&["-i", "ext0"]).unwrap();
        assert_eq!(s.interfaces, ["ext0"]);
        assert_eq!(s.queues, None, "every receive queue");
        assert_eq!(s.control_socket, PathBuf::from(DEFAULT_SOCKET));
        assert_eq!(s.conn_table_size, DEFAULT_TABLE);
        assert_eq!(s.syn_budget.per_second, DEFAULT_SYN_BUDGET);
        assert_eq!(s.poll, PollSettings::default());
        assert_eq!(s.services.services().count(), 0);
    }

    #[test]
    fn flags_are_taken_and_bad_ones_refused() {
        let s = of(&["-i", "ext0", "--poll-mode", "busy", "--syn-budget", "0"]).unwrap();
        assert_eq!(s.poll.mode.name(), "busy");
        assert_eq!(s.syn_budget.per_second, 0);
        // No arguments: the default file, which must exist.
        let cli = |a: &[&str]| Cli::parse_from(std::iter::once("xvsd").chain(a.iter().copied()));
        let dir = std::env::temp_dir().join(format!("xvsd-default-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = dir.join("xvsd.yaml");
        let e = settings_from(&cli(&[]), &missing).unwrap_err();
        assert!(e.starts_with("no configuration: "), "{e}");
        std::fs::write(&missing, "interfaces: [ext0]\n").unwrap();
        let s = settings_from(&cli(&[]), &missing).unwrap();
        assert_eq!(s.interfaces, ["ext0"]);
        assert_eq!(s.config_path.as_deref(), Some(missing.as_path()));
        std::fs::write(&missing, "queues: 1\n").unwrap();
        let e = settings_from(&cli(&[]), &missing).unwrap_err();
        assert!(e.starts_with("no interface to serve"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(
            of(&["-i", "ext0", "--queues", "0"]).unwrap_err(),
            "--queues must be at least 1"
        );
        let e = of(&["-i", "ext0", "--forward-only", "ext1=02:00:00:00:00:11"]).unwrap_err();
        assert!(e.contains("not one of the served interfaces"), "{e}");
    }
}
