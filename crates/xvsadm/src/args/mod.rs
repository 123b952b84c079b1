//! ipvsadm's command line, parsed with clap and checked the way ipvsadm checks it (one
//! command, the options each command needs and allows), into what xvsadm does.
//!
//! This module is the command line as clap reads it; [`action`] turns it into an [`Action`]
//! with ipvsadm's checks and words.

mod action;
mod names;
#[cfg(test)]
mod tests;

pub use action::{Action, restore_lines};
pub use names::{enable as enable_names, name_of};

use clap::{ArgAction, Args as ClapArgs, Parser, Subcommand};
use std::net::IpAddr;
use std::path::PathBuf;
use xvs_control::check::{CheckKind, StartState};

/// xvsadm: administer xvsd the way ipvsadm administers IPVS.
///
/// Commands (one per invocation), as ipvsadm:
///   -A|-E -t|-u|--sctp-service VIP:PORT | -f FWMARK [-s SCHED] [-p [TIMEOUT]] [-M NETMASK] [-b FLAGS] [-o]
///   -D -t|-u|--sctp-service VIP:PORT | -f FWMARK
///   -C
///   -a|-e -t|-u|--sctp-service VIP:PORT | -f FWMARK -r RIP[:PORT] [-g|-m|-i|--fullnat] [-w WEIGHT] [-x UPPER] [-y LOWER]
///   -d -t|-u|--sctp-service VIP:PORT | -f FWMARK -r RIP[:PORT]
///   -L|-l [SERVICE] [-n] [--stats|--rate|--thresholds|--persistent-conn] [--exact] [-c] [--timeout]
///   -Z [SERVICE]
///   --set TCP TCPFIN UDP
///   -R (rules on standard input)  -S [-n]
///   --start-daemon master|backup [--mcast-interface IF] [--syncid N] [--sync-maxlen N]
///       [--mcast-group ADDR] [--mcast-port PORT] [--mcast-ttl TTL]
///   --stop-daemon master|backup   -L --daemon
/// xvs's own: --reload [FILE], `xvsadm top`, `xvsadm trace`, `xvsadm health`, `xvsadm check`,
/// `xvsadm stats`, `xvsadm vrrp`, `xvsadm convert-keepalived FILE`.
#[derive(Debug, Parser)]
#[command(name = "xvsadm", disable_version_flag = true, verbatim_doc_comment)]
pub struct Args {
    /// xvsd's control socket.
    #[arg(
        long,
        value_name = "PATH",
        env = "XVS_SOCKET",
        default_value = "/run/xvs/xvsd.sock",
        global = true
    )]
    pub socket: PathBuf,

    /// Add a virtual service.
    #[arg(short = 'A', long = "add-service", action = ArgAction::SetTrue)]
    pub add_service: bool,
    /// Edit a virtual service.
    #[arg(short = 'E', long = "edit-service", action = ArgAction::SetTrue)]
    pub edit_service: bool,
    /// Delete a virtual service.
    #[arg(short = 'D', long = "delete-service", action = ArgAction::SetTrue)]
    pub delete_service: bool,
    /// Clear the whole table.
    #[arg(short = 'C', long = "clear", action = ArgAction::SetTrue)]
    pub clear: bool,
    /// Restore rules from standard input.
    #[arg(short = 'R', long = "restore", action = ArgAction::SetTrue)]
    pub restore: bool,
    /// Save rules to standard output.
    #[arg(short = 'S', long = "save", action = ArgAction::SetTrue)]
    pub save: bool,
    /// Add a real server.
    #[arg(short = 'a', long = "add-server", action = ArgAction::SetTrue)]
    pub add_server: bool,
    /// Edit a real server.
    #[arg(short = 'e', long = "edit-server", action = ArgAction::SetTrue)]
    pub edit_server: bool,
    /// Delete a real server.
    #[arg(short = 'd', long = "delete-server", action = ArgAction::SetTrue)]
    pub delete_server: bool,
    /// List the table.
    #[arg(short = 'L', long = "list", action = ArgAction::SetTrue)]
    pub list: bool,
    /// List the table (same as -L).
    #[arg(short = 'l', action = ArgAction::SetTrue, hide = true)]
    pub list_l: bool,
    /// Zero counters of a service or all.
    #[arg(short = 'Z', long = "zero", action = ArgAction::SetTrue)]
    pub zero: bool,
    /// Set connection timeouts: TCP TCPFIN UDP (seconds; 0 leaves one unchanged).
    #[arg(long = "set", num_args = 1.., value_name = "SECONDS", allow_negative_numbers = true)]
    pub set: Option<Vec<String>>,
    /// Re-read xvsd's configuration file (or FILE) and apply the difference.
    #[arg(long, value_name = "FILE", num_args = 0..=1, default_missing_value = "")]
    pub reload: Option<String>,
    /// Show the version.
    #[arg(short = 'v', long = "version", action = ArgAction::SetTrue)]
    pub version: bool,
    /// Start the connection-sync daemon: master or backup.
    #[arg(long = "start-daemon", value_name = "STATE")]
    pub start_daemon: Option<String>,
    /// Stop the connection-sync daemon: master or backup.
    #[arg(long = "stop-daemon", value_name = "STATE")]
    pub stop_daemon: Option<String>,
    /// With -L: the sync daemons.
    #[arg(long = "daemon", action = ArgAction::SetTrue)]
    pub daemon: bool,
    /// Sync daemon: multicast interface (default eth0).
    #[arg(long = "mcast-interface", value_name = "IF")]
    pub mcast_interface: Option<String>,
    /// Sync daemon: sync id, 0-255 (default 0).
    #[arg(long = "syncid", value_name = "ID")]
    pub syncid: Option<String>,
    /// Sync daemon: largest message, 1-65507 bytes.
    #[arg(long = "sync-maxlen", value_name = "LEN")]
    pub sync_maxlen: Option<String>,
    /// Sync daemon: multicast group (default 224.0.0.81).
    #[arg(long = "mcast-group", value_name = "ADDR")]
    pub mcast_group: Option<String>,
    /// Sync daemon: UDP port (default 8848).
    #[arg(long = "mcast-port", value_name = "PORT")]
    pub mcast_port: Option<String>,
    /// Sync daemon: multicast TTL, 1-255 (default 1).
    #[arg(long = "mcast-ttl", value_name = "TTL")]
    pub mcast_ttl: Option<String>,

    /// The service.
    #[command(flatten)]
    pub svc: ServiceArg,
    /// Scheduler (rr, wrr, lc, wlc, lblc, lblcr, dh, sh, sed, nq, fo, ovf, mh, twos).
    #[arg(short = 's', long = "scheduler", value_name = "SCHED")]
    pub scheduler: Option<String>,
    /// Persistence, with an optional timeout (default 300 s).
    #[arg(short = 'p', long = "persistent", value_name = "TIMEOUT", num_args = 0..=1, default_missing_value = "300")]
    pub persistent: Option<String>,
    /// Persistence granularity: a netmask (IPv4) or prefix length.
    #[arg(short = 'M', long = "netmask", value_name = "NETMASK")]
    pub netmask: Option<String>,
    /// Scheduler flags: sh-fallback, sh-port, mh-fallback, mh-port (comma-separated).
    #[arg(short = 'b', long = "sched-flags", value_name = "FLAGS")]
    pub sched_flags: Option<String>,
    /// One-packet scheduling (UDP).
    #[arg(short = 'o', long = "ops", action = ArgAction::SetTrue)]
    pub ops: bool,
    /// FullNAT local addresses of the service (xvs; comma-separated).
    #[arg(long = "laddr", value_name = "ADDRS", value_delimiter = ',')]
    pub laddr: Vec<IpAddr>,

    /// Real server RIP[:PORT].
    #[arg(short = 'r', long = "real-server", value_name = "SERVER")]
    pub real: Option<String>,
    /// Direct routing (the default).
    #[arg(short = 'g', long = "gatewaying", action = ArgAction::SetTrue)]
    pub gatewaying: bool,
    /// IP-in-IP tunnelling.
    #[arg(short = 'i', long = "ipip", action = ArgAction::SetTrue)]
    pub ipip: bool,
    /// Masquerading (NAT).
    #[arg(short = 'm', long = "masquerading", action = ArgAction::SetTrue)]
    pub masquerading: bool,
    /// Full NAT: source and destination rewritten (xvs; the service needs --laddr).
    #[arg(long = "fullnat", action = ArgAction::SetTrue)]
    pub fullnat: bool,
    /// Tunnel type with -i: ipip (default), gue or gre.
    #[arg(long = "tun-type", value_name = "TYPE")]
    pub tun_type: Option<String>,
    /// GUE tunnel: the real server's UDP port.
    #[arg(long = "tun-port", value_name = "PORT")]
    pub tun_port: Option<String>,
    /// GUE/GRE tunnel without checksum (the default).
    #[arg(long = "tun-nocsum", action = ArgAction::SetTrue, conflicts_with_all = ["tun_csum", "tun_remcsum"])]
    pub tun_nocsum: bool,
    /// GUE/GRE tunnel with the UDP or GRE checksum.
    #[arg(long = "tun-csum", action = ArgAction::SetTrue, conflicts_with = "tun_remcsum")]
    pub tun_csum: bool,
    /// GUE tunnel with remote checksum offload.
    #[arg(long = "tun-remcsum", action = ArgAction::SetTrue)]
    pub tun_remcsum: bool,
    /// Weight (0-65535, default 1).
    #[arg(
        short = 'w',
        long = "weight",
        value_name = "WEIGHT",
        allow_negative_numbers = true
    )]
    pub weight: Option<String>,
    /// Upper connection threshold.
    #[arg(
        short = 'x',
        long = "u-threshold",
        value_name = "UTHRESHOLD",
        allow_negative_numbers = true
    )]
    pub u_threshold: Option<String>,
    /// Lower connection threshold.
    #[arg(
        short = 'y',
        long = "l-threshold",
        value_name = "LTHRESHOLD",
        allow_negative_numbers = true
    )]
    pub l_threshold: Option<String>,

    /// Numeric output (xvsadm always is).
    #[arg(short = 'n', long = "numeric", action = ArgAction::SetTrue)]
    pub numeric: bool,
    /// List connections.
    #[arg(short = 'c', long = "connection", action = ArgAction::SetTrue)]
    pub connection: bool,
    /// List timeouts.
    #[arg(long = "timeout", action = ArgAction::SetTrue)]
    pub timeout: bool,
    /// Totals.
    #[arg(long, action = ArgAction::SetTrue)]
    pub stats: bool,
    /// Rates.
    #[arg(long, action = ArgAction::SetTrue)]
    pub rate: bool,
    /// Thresholds.
    #[arg(long, action = ArgAction::SetTrue)]
    pub thresholds: bool,
    /// Persistent connections.
    #[arg(long = "persistent-conn", action = ArgAction::SetTrue)]
    pub persistent_conn: bool,
    /// Sort (the default; kept for compatibility).
    #[arg(long, action = ArgAction::SetTrue)]
    pub sort: bool,
    /// Do not sort.
    #[arg(long, action = ArgAction::SetTrue)]
    pub nosort: bool,
    /// Whole numbers in --stats and --rate.
    #[arg(short = 'X', long, action = ArgAction::SetTrue)]
    pub exact: bool,
    /// JSON instead of ipvsadm's layout (for -L).
    #[arg(long, action = ArgAction::SetTrue)]
    pub json: bool,

    /// xvs's own commands.
    #[command(subcommand)]
    pub sub: Option<Sub>,
}

/// A virtual service on the command line: -t|-u|--sctp-service VIP:PORT or -f FWMARK [-6].
#[derive(Debug, ClapArgs)]
pub struct ServiceArg {
    /// TCP service VIP[:PORT] (IPv6 as [ADDR]:PORT).
    #[arg(short = 't', long = "tcp-service", value_name = "SERVICE")]
    pub tcp: Option<String>,
    /// UDP service VIP[:PORT].
    #[arg(short = 'u', long = "udp-service", value_name = "SERVICE")]
    pub udp: Option<String>,
    /// SCTP service VIP[:PORT].
    #[arg(long = "sctp-service", value_name = "SERVICE")]
    pub sctp: Option<String>,
    /// Firewall-mark service.
    #[arg(short = 'f', long = "fwmark-service", value_name = "MARK")]
    pub fwmark: Option<String>,
    /// The firewall-mark service is IPv6.
    #[arg(short = '6', long = "ipv6", action = ArgAction::SetTrue)]
    pub ipv6: bool,
}

/// xvs's own commands.
#[derive(Debug, Subcommand)]
pub enum Sub {
    /// Live view of services and real servers: rates, connections, drops (q quits).
    Top {
        /// Print one screen to standard output and exit.
        #[arg(long)]
        once: bool,
        /// Refresh interval in milliseconds.
        #[arg(long, default_value_t = 1000)]
        interval_ms: u64,
    },
    /// Which service and real server a packet would go to, and why.
    Trace(TraceArgs),
    /// Health of every real server: check, state and for how long, last result and when,
    /// connections left.
    Health {
        /// JSON instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// Set (or with --none remove) the health check of one real server, until the next reload.
    Check(Box<CheckArgs>),
    /// Dataplane counters: polling per interface, steering and its drops, workers, the
    /// kernel's AF_XDP drop counters per socket, forwarder drops by reason.
    Stats {
        /// JSON instead of the tables.
        #[arg(long)]
        json: bool,
    },
    /// VRRP instances: state, priority now and configured, the master, since when, adverts
    /// in and out, refused adverts by reason.
    Vrrp {
        /// JSON instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// Print the xvs YAML equivalent of a keepalived.conf (its warnings on standard error).
    ConvertKeepalived {
        /// The keepalived.conf (includes are followed).
        file: PathBuf,
    },
}

/// `xvsadm check -t VIP:PORT -r RIP[:PORT] --type tcp|http|https|udp|misc [options]`.
#[derive(Debug, ClapArgs)]
pub struct CheckArgs {
    /// The service.
    #[command(flatten)]
    pub svc: ServiceArg,
    /// Real server RIP[:PORT].
    #[arg(short = 'r', long = "real-server", value_name = "SERVER")]
    pub real: String,
    /// Remove the check (the server counts as up).
    #[arg(long, conflicts_with = "kind")]
    pub none: bool,
    /// tcp, http, https, udp or misc.
    #[arg(long = "type", value_name = "TYPE", required_unless_present = "none")]
    pub kind: Option<CheckKind>,
    /// Port to probe (the real server's port by default).
    #[arg(long)]
    pub port: Option<u16>,
    /// HTTP(S): the path to GET.
    #[arg(long)]
    pub path: Option<String>,
    /// HTTP(S): acceptable status codes, comma-separated (default 200).
    #[arg(long, value_delimiter = ',')]
    pub status: Vec<u16>,
    /// HTTP(S): MD5 of the body, hex.
    #[arg(long)]
    pub digest: Option<String>,
    /// HTTP(S): a substring the body must contain; UDP: the response must contain it.
    #[arg(long)]
    pub expect: Option<String>,
    /// HTTP(S): the Host header.
    #[arg(long)]
    pub host: Option<String>,
    /// UDP: the request payload.
    #[arg(long)]
    pub send: Option<String>,
    /// MISC: the command (run with sh -c).
    #[arg(long)]
    pub command: Option<String>,
    /// Seconds between checks.
    #[arg(long, default_value_t = 2.0, allow_negative_numbers = true)]
    pub interval: f64,
    /// Seconds a check may take.
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    pub timeout: f64,
    /// Successes in a row to come back up.
    #[arg(long, default_value_t = 1)]
    pub rise: u32,
    /// Failures in a row to go down.
    #[arg(long, default_value_t = 1)]
    pub fall: u32,
    /// State before the first result: up or down.
    #[arg(long, default_value = "up")]
    pub start: StartState,
}

/// `xvsadm trace PROTO SRC:PORT DST:PORT`.
#[derive(Debug, ClapArgs)]
pub struct TraceArgs {
    /// tcp, udp or sctp.
    pub proto: String,
    /// Client address and port (IPv6 as [ADDR]:PORT).
    pub source: String,
    /// Destination address and port.
    pub destination: String,
    /// Interface the packet arrives on.
    #[arg(long = "interface", short = 'I')]
    pub interface: Option<String>,
    /// TCP flags of the packet (syn, ack, fin, rst, psh; comma-separated; default syn).
    #[arg(long, default_value = "syn")]
    pub flags: String,
}

/// ipvsadm's options that xvs does not implement, with why.
const UNSUPPORTED: [(&str, &str); 1] = [("--pe", "persistence engines (sip)")];

/// The first ipvsadm option in `argv` that xvs does not implement, as the message to give
/// ("not supported by xvs: OPTION"), instead of the parser's suggestion of a lookalike.
pub fn unsupported<S: AsRef<str>>(argv: &[S]) -> Option<String> {
    argv.iter().find_map(|a| {
        let a = a.as_ref();
        let name = a.split('=').next().unwrap_or(a);
        UNSUPPORTED
            .iter()
            .find(|(o, _)| *o == name)
            .map(|(o, why)| format!("not supported by xvs: {o} ({why})"))
    })
}
