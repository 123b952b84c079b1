//! The control-socket protocol, version 1: one JSON request per line on a Unix stream socket,
//! one JSON reply line back. Every request carries `"v": 1` and a `"cmd"`; every reply carries
//! `"v": 1` and `"ok"`, with `"error"` when `ok` is false. See docs/operations.md for the list.

use crate::change::{Change, Key, RealSpec, ServiceSpec};
use crate::check::CheckConfig;
use serde::{Deserialize, Serialize};

/// Protocol version.
pub const VERSION: u32 = 1;

/// A request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Request {
    /// Is the daemon there?
    Ping,
    /// Daemon-wide counters: frames, drops by reason, workers, connection table, steering.
    Stats,
    /// Services and real servers with counters and rates, and the timeouts.
    List,
    /// Connection entries (at most `limit`, default 100000).
    Conns {
        /// Most entries to return.
        #[serde(default)]
        limit: Option<usize>,
    },
    /// Applies a batch of changes atomically: all or none.
    Apply {
        /// The changes, in order.
        changes: Vec<Change>,
    },
    /// Zeroes the counters and rates of one service, or of all.
    Zero {
        /// The service (all if absent).
        #[serde(default)]
        service: Option<Key>,
    },
    /// Re-reads the configuration file (the one xvsd started with, or `path`) and applies the
    /// difference.
    Reload {
        /// Another file to read.
        #[serde(default)]
        path: Option<String>,
    },
    /// Which service and real server a packet would go to, and why.
    Trace(TraceQuery),
    /// The Prometheus text exposition (the same text as the metrics endpoint).
    Metrics,
    /// Health checks: state, last result, connections left.
    Health,
    /// VRRP instances: state, priorities, master, counters.
    Vrrp,
    /// The connection-sync daemons and their counters (`-L --daemon`).
    Daemon,
    /// Starts a sync daemon (`--start-daemon`).
    StartDaemon(DaemonSpec),
    /// Stops a sync daemon (`--stop-daemon master|backup`).
    StopDaemon {
        /// `master` or `backup`.
        role: String,
    },
    /// Sets (or with `check` absent, removes) the health check of one real server, until the
    /// next reload.
    SetCheck {
        /// The service.
        service: Key,
        /// Real server address.
        addr: std::net::IpAddr,
        /// Real server port (the virtual port if absent).
        #[serde(default)]
        port: Option<u16>,
        /// The check.
        #[serde(default)]
        check: Option<CheckConfig>,
    },
}

/// A request line: the version and the request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// Protocol version.
    pub v: u32,
    /// The request.
    #[serde(flatten)]
    pub req: Request,
}

/// The packet a trace asks about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceQuery {
    /// `tcp`, `udp` or `sctp`.
    pub proto: String,
    /// Client address.
    pub src: std::net::IpAddr,
    /// Client port.
    pub sport: u16,
    /// Destination (virtual) address.
    pub dst: std::net::IpAddr,
    /// Destination port.
    pub dport: u16,
    /// Interface the packet arrives on (any served one if absent).
    #[serde(default)]
    pub interface: Option<String>,
    /// TCP flags of the packet (a SYN if absent).
    #[serde(default)]
    pub tcp_flags: Option<u8>,
}

/// Totals of a service or real server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Counters {
    /// Connections scheduled.
    pub conns: u64,
    /// Packets towards real servers.
    pub in_pkts: u64,
    /// Packets towards clients (NAT and FullNAT).
    pub out_pkts: u64,
    /// Bytes towards real servers.
    pub in_bytes: u64,
    /// Bytes towards clients.
    pub out_bytes: u64,
}

/// Rates, per second, estimated as IPVS does (2-second samples, moving average).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Rates {
    /// Connections per second.
    pub cps: u64,
    /// Packets per second towards real servers.
    pub in_pps: u64,
    /// Packets per second towards clients.
    pub out_pps: u64,
    /// Bytes per second towards real servers.
    pub in_bps: u64,
    /// Bytes per second towards clients.
    pub out_bps: u64,
}

/// A real server in a listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RealView {
    /// Address, port, method, weight, thresholds.
    #[serde(flatten)]
    pub spec: RealSpec,
    /// Active connections (TCP/SCTP established).
    pub active: u64,
    /// Inactive connections.
    pub inactive: u64,
    /// Persistence templates naming this server.
    pub persist: u64,
    /// Totals.
    pub stats: Counters,
    /// Rates.
    pub rates: Rates,
    /// False while its health check fails.
    #[serde(default = "yes")]
    pub up: bool,
    /// Its service sets weight 0 on failure (listed with weight 0) rather than removing it
    /// from the listing.
    #[serde(default)]
    pub inhibit: bool,
}

fn yes() -> bool {
    true
}

/// A virtual service in a listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceView {
    /// The service.
    pub service: Key,
    /// Its options.
    #[serde(flatten)]
    pub spec: ServiceSpec,
    /// Totals (sums over its real servers, removed ones included).
    pub stats: Counters,
    /// Rates.
    pub rates: Rates,
    /// Real servers, in the order they were added.
    pub reals: Vec<RealView>,
}

/// The reply to `list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ListReply {
    /// Capacity of the connection table (ipvsadm's `size=`).
    pub table_size: u64,
    /// Timeouts (tcp, tcpfin, udp).
    pub timeouts: (u32, u32, u32),
    /// Services.
    pub services: Vec<ServiceView>,
}

/// A connection entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnView {
    /// `TCP`, `UDP`, `SCTP`, or `IP` for firewall-mark templates.
    pub proto: String,
    /// Seconds until it expires.
    pub expires: u32,
    /// State name (IPVS's names).
    pub state: String,
    /// Client address.
    pub client: std::net::IpAddr,
    /// Client port.
    pub cport: u16,
    /// Virtual address.
    pub vaddr: std::net::IpAddr,
    /// Virtual port.
    pub vport: u16,
    /// Real server address.
    pub daddr: std::net::IpAddr,
    /// Real server port.
    pub dport: u16,
    /// True for a persistence template.
    #[serde(default)]
    pub template: bool,
}

/// The reply to `conns`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ConnsReply {
    /// Entries.
    pub conns: Vec<ConnView>,
    /// True if there were more than the limit.
    pub truncated: bool,
}

/// The reply to `apply` and `reload`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ApplyReply {
    /// The changes made, as ipvsadm lines.
    pub applied: Vec<String>,
    /// Snapshot generation now running.
    pub generation: u64,
}

/// The reply to `trace`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct TraceReply {
    /// What happens to the packet: `forward`, `host` (passed to the kernel) or `drop`.
    pub verdict: String,
    /// The matching service.
    #[serde(default)]
    pub service: Option<String>,
    /// The chosen real server (`addr:port`).
    #[serde(default)]
    pub real: Option<String>,
    /// Forwarding method.
    #[serde(default)]
    pub method: Option<String>,
    /// Egress interface and next-hop MAC, when known.
    #[serde(default)]
    pub egress: Option<String>,
    /// Why, in words.
    pub reason: String,
}

/// One health-checked real server (or sorry server) in the `health` reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthView {
    /// The service.
    pub service: Key,
    /// The real server (`addr:port`).
    pub real: String,
    /// The check, described (`-` for none).
    pub check: String,
    /// `up`, `down`, `unchecked`, or for a sorry server `sorry` / `sorry (serving)`.
    pub state: String,
    /// Seconds since the state last changed (since start if it never did).
    pub since: f64,
    /// The last result in words.
    pub last: String,
    /// Seconds since the last check finished (absent before the first).
    #[serde(default)]
    pub last_ago: Option<f64>,
    /// How many times the state changed.
    pub transitions: u64,
    /// Configured weight.
    pub weight: u32,
    /// Active connections.
    pub active: u64,
    /// Inactive connections.
    pub inactive: u64,
}

/// The reply to `health`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct HealthReply {
    /// Every real server of every service, and sorry servers.
    pub servers: Vec<HealthView>,
    /// Services withdrawn because their quorum is not met.
    #[serde(default)]
    pub withdrawn: Vec<Key>,
}

/// A sync daemon to start, as ipvsadm's options give it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaemonSpec {
    /// `master` or `backup`.
    pub role: String,
    /// `--mcast-interface` (ipvsadm's default `eth0`).
    pub interface: String,
    /// `--syncid` (default 0).
    #[serde(default)]
    pub syncid: u8,
    /// `--sync-maxlen` (0: the default).
    #[serde(default)]
    pub maxlen: u16,
    /// `--mcast-group` (the default 224.0.0.81 if absent).
    #[serde(default)]
    pub group: Option<std::net::IpAddr>,
    /// `--mcast-port` (0: 8848).
    #[serde(default)]
    pub port: u16,
    /// `--mcast-ttl` (0: 1).
    #[serde(default)]
    pub ttl: u8,
}

/// One VRRP instance as `xvsadm vrrp` lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct VrrpStatus {
    /// Instance name.
    pub name: String,
    /// Interface.
    pub interface: String,
    /// Virtual router id.
    pub vrid: u8,
    /// INIT, BACKUP, MASTER, FAULT or STOP.
    pub state: String,
    /// Priority now.
    pub priority: u8,
    /// Configured priority.
    pub base_priority: u8,
    /// The master's address (ours when master), if known.
    pub master: Option<String>,
    /// Seconds in this state.
    pub since: f64,
    /// Advertisements believed.
    pub adverts_in: u64,
    /// Advertisements sent.
    pub adverts_out: u64,
    /// Times it became master.
    pub became_master: u64,
    /// Advertisements refused, by reason.
    pub rejected: std::collections::BTreeMap<String, u64>,
    /// Its addresses.
    pub vips: Vec<String>,
    /// The sync group it belongs to.
    pub group: Option<String>,
}

/// The `vrrp` reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct VrrpReply {
    /// Instances, in configuration order.
    pub instances: Vec<VrrpStatus>,
}

/// One running sync daemon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaemonStatus {
    /// `master` or `backup`.
    pub role: String,
    /// Interface.
    pub interface: String,
    /// Sync id.
    pub syncid: u8,
    /// Largest message.
    pub maxlen: u16,
    /// Multicast group.
    pub group: String,
    /// UDP port.
    pub port: u16,
    /// Multicast TTL.
    pub ttl: u8,
}

/// The `daemon` reply: the daemons and the sync counters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct DaemonReply {
    /// Running daemons (master first).
    pub daemons: Vec<DaemonStatus>,
    /// Messages sent.
    pub messages_sent: u64,
    /// Connections sent.
    pub conns_sent: u64,
    /// Messages received.
    pub messages_received: u64,
    /// Connections received.
    pub conns_received: u64,
    /// Connections installed or refreshed.
    pub conns_installed: u64,
    /// Messages or connections refused, by reason.
    pub rejected: std::collections::BTreeMap<String, u64>,
}
