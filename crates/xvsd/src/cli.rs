//! Command line of xvsd.

use clap::{ArgAction, Parser, ValueEnum};
use std::path::PathBuf;
use xvs_control::config::{BindModeConfig, PollModeConfig, XdpModeConfig};

/// The configuration file read when neither --config, --keepalived-conf nor --interface is
/// given.
pub const DEFAULT_CONFIG: &str = "/etc/xvs/xvsd.yaml";

/// xvsd: the Linux Virtual Server on AF_XDP.
///
/// Starts from a YAML configuration (--config; /etc/xvs/xvsd.yaml when run with no
/// arguments), or with no services at all from one or more --interface flags (services are
/// then added with xvsadm). Command-line flags override the configuration file.
#[derive(Debug, Parser)]
#[command(name = "xvsd", version, about, disable_version_flag = true)]
pub struct Cli {
    /// YAML configuration file [default: /etc/xvs/xvsd.yaml when no --interface or
    /// --keepalived-conf is given].
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Validate a configuration file and exit (0 if valid; with --keepalived-conf given
    /// instead of a file here, that keepalived.conf is checked).
    #[arg(long, value_name = "FILE", conflicts_with = "config", num_args = 0..=1, default_missing_value = "")]
    pub check_config: Option<PathBuf>,
    /// Run from an existing keepalived.conf (its virtual servers, VRRP instances, scripts and
    /// sync daemon); the interfaces served are those given with --interface and those the
    /// file names. Keywords xvs does not implement are warned about with file:line.
    #[arg(long, value_name = "FILE", conflicts_with = "config")]
    pub keepalived_conf: Option<PathBuf>,
    /// Interface to serve (repeat for a two-armed setup; the order gives the port numbers).
    #[arg(long = "interface", short = 'i', value_name = "IF")]
    pub interfaces: Vec<String>,
    /// Control socket path [default: /run/xvs/xvsd.sock].
    #[arg(long, value_name = "PATH", env = "XVS_SOCKET")]
    pub control_socket: Option<PathBuf>,
    /// Queues to serve on every interface, one worker per queue (`--workers` is the same)
    /// [default: every receive queue the interfaces have (ethtool's channels)]; fewer only when
    /// given here or in the file, since traffic on unserved queues bypasses the balancer.
    #[arg(long, visible_alias = "workers", value_name = "N")]
    pub queues: Option<u32>,
    /// CPU cores to pin the workers to, comma-separated, in worker order [default: the first
    /// cores this process may use, one per worker].
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub cores: Vec<usize>,
    /// XDP attach mode [default: auto: native, else generic].
    #[arg(long, value_enum)]
    pub xdp_mode: Option<XdpModeConfig>,
    /// AF_XDP bind mode [default: auto: zero-copy, else copy].
    #[arg(long, value_enum)]
    pub bind_mode: Option<BindModeConfig>,
    /// Replace an XDP program on a served interface that is not xvs's (one of xvs's own left
    /// by an xvsd that did not stop is always replaced, with a log line).
    #[arg(long)]
    pub force: bool,
    /// Polling mode [default: auto].
    #[arg(long, value_enum)]
    pub poll_mode: Option<PollModeConfig>,
    /// threaded-yield: microseconds a worker with empty rings sleeps; 0 blocks until the
    /// kernel has received a frame [default: 0].
    #[arg(long, value_name = "US", value_parser = clap::value_parser!(u32).range(0..=10000))]
    pub poll_sleep_us: Option<u32>,
    /// threaded-yield: receive coalescing in microseconds (0: off) [default: 100].
    #[arg(long, value_name = "US", value_parser = clap::value_parser!(u32).range(0..=10000))]
    pub coalesce_us: Option<u32>,
    /// New TCP connections per second each receive queue admits (the XDP program drops SYNs
    /// beyond it; 0: no budget) [default: 100000].
    #[arg(long, value_name = "N")]
    pub syn_budget: Option<u64>,
    /// Connection-table entries, rounded up to a power of two [default: 1048576].
    #[arg(long, value_name = "N")]
    pub conn_table_size: Option<usize>,
    /// AF_XDP: UMEM frames (4 KiB each) per served interface and worker [default: 4096].
    /// Fewer than the rings hold (3 × ring size) save memory but let the fill rings run dry
    /// under load.
    #[arg(long, value_name = "N")]
    pub umem_frames: Option<u32>,
    /// AF_XDP: receive and transmit ring entries, a power of two [default: 1024] (fill and
    /// completion rings are twice as large).
    #[arg(long, value_name = "N")]
    pub ring_size: Option<u32>,
    /// Add the VIPs as addresses of the first interface at start and remove them at exit
    /// [default: off].
    #[arg(long)]
    pub manage_vips: bool,
    /// Scale-out: hold the VIPs of services that are up as addresses of the xvs-vip device,
    /// which a routing daemon (BIRD's `direct` protocol) announces; withdrawn when a service
    /// loses its quorum, when xvsd stops, and with the device when xvsd dies [default: off].
    #[arg(long)]
    pub announce_vips: bool,
    /// Serve Prometheus metrics over HTTP at ADDR (default 127.0.0.1:9469 when given without
    /// a value; off when not given).
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "127.0.0.1:9469")]
    pub metrics: Option<String>,
    /// Benchmark baseline: send every frame the steering program hands over out of IF to MAC
    /// (several IF=MAC, comma-separated: frame by frame in turn), rewriting only the Ethernet
    /// addresses (no parsing, no connection table, no scheduling): the I/O ceiling xvs-bench
    /// compares the forwarding modes with.
    #[arg(long, value_name = "IF=MAC", value_delimiter = ',')]
    pub forward_only: Vec<String>,
    /// Log level (error, warn, info, debug, trace) or a tracing filter [default: info].
    #[arg(long, value_name = "LEVEL")]
    pub log_level: Option<String>,
    /// Log format: text (with timestamps on a terminal or a file; without under systemd,
    /// whose journal stamps every line) or json (one object per line, for log shippers).
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Print the version and exit.
    #[arg(short = 'v', short_alias = 'V', long, action = ArgAction::Version)]
    pub version: (),
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}
