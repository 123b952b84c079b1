//! The file's high-availability sections: `vrrp:` (keepalived's `vrrp_script`,
//! `vrrp_instance` and `vrrp_sync_group`, with keepalived's names and defaults) and `sync:`
//! (IPVS's connection synchronisation, keepalived's `lvs_sync_daemon`). A keepalived.conf is
//! read into these same structures, so both are checked by the same code.

use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// `vrrp:` — scripts, instances and sync groups.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VrrpConfig {
    /// keepalived's `router_id` (the name in notify arguments and logs; the host name if
    /// absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub router_id: Option<String>,
    /// Tracking scripts (`vrrp_script`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scripts: Vec<VrrpScriptConfig>,
    /// Instances (`vrrp_instance`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instances: Vec<VrrpInstanceConfig>,
    /// Groups of instances that change state together (`vrrp_sync_group`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sync_groups: Vec<SyncGroupConfig>,
}

/// A tracking script (`vrrp_script NAME { … }`).
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VrrpScriptConfig {
    /// Its name, as `track_script` refers to it.
    pub name: String,
    /// The command (run with `sh -c`); exit 0 is success.
    pub script: String,
    /// Seconds between runs (default 1).
    #[serde(default = "one_s")]
    pub interval: f64,
    /// Seconds a run may take (default: the interval).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<f64>,
    /// Priority change while it succeeds (> 0) or fails (< 0); 0: a failure puts the
    /// instances that track it in FAULT (default 0).
    #[serde(default)]
    pub weight: i32,
    /// Successes in a row before it counts as up (default 1).
    #[serde(default = "one_u")]
    pub rise: u32,
    /// Failures in a row before it counts as down (default 1).
    #[serde(default = "one_u")]
    pub fall: u32,
    /// Counts as failed until it first succeeds (`init_fail`).
    #[serde(default)]
    pub init_fail: bool,
    /// Run as this user (default: xvsd's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

/// Initial state asked for (`state MASTER|BACKUP`).
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InitialState {
    /// Start as backup and take over when no master is heard (keepalived's default).
    #[default]
    Backup,
    /// Start as master.
    Master,
}

/// `authentication { auth_type PASS; auth_pass … }` (VRRPv2 only).
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// `pass` (keepalived's PASS; AH is not supported).
    #[serde(rename = "type")]
    pub kind: String,
    /// The password (at most 8 bytes are sent).
    pub password: String,
}

/// A tracked interface or script with its weight.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrackConfig {
    /// Interface or script name.
    pub name: String,
    /// Priority change (see [`VrrpScriptConfig::weight`]); absent: the script's own weight,
    /// or 0 (FAULT when down) for an interface.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<i32>,
}

/// A virtual address (`virtual_ipaddress { A/len dev IF }`).
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VipConfig {
    /// The address.
    pub addr: IpAddr,
    /// Prefix length (32 / 128 if absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<u8>,
    /// Interface (the instance's if absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dev: Option<String>,
}

/// A VRRP instance (`vrrp_instance NAME { … }`).
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VrrpInstanceConfig {
    /// Its name.
    pub name: String,
    /// Interface the adverts are sent and heard on.
    pub interface: String,
    /// Virtual router id, 1..=255 (`virtual_router_id`).
    pub vrid: u8,
    /// Initial state (default backup).
    #[serde(default)]
    pub state: InitialState,
    /// Priority 1..=255 (default 100; 255 if `state: master` and none given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<u8>,
    /// Seconds between adverts (default 1; v3 takes hundredths).
    #[serde(default = "one_s")]
    pub advert_int: f64,
    /// VRRP version, 2 or 3 (default 2; instances with IPv6 addresses are always 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u8>,
    /// VRRPv2 authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication: Option<AuthConfig>,
    /// The addresses the master holds.
    #[serde(default)]
    pub virtual_ipaddress: Vec<VipConfig>,
    /// Source address of unicast adverts (the interface's first address if absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unicast_src_ip: Option<IpAddr>,
    /// Peers to advertise to by unicast instead of multicast.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unicast_peer: Vec<IpAddr>,
    /// A higher-priority backup does not take over from a working master.
    #[serde(default)]
    pub nopreempt: bool,
    /// Seconds a higher-priority backup waits before taking over (0..=1000).
    #[serde(default)]
    pub preempt_delay: f64,
    /// Seconds after becoming master before the second round of gratuitous ARPs (default 5;
    /// 0: none).
    #[serde(default = "five_s")]
    pub garp_master_delay: f64,
    /// Gratuitous ARPs (or unsolicited NAs) per address in each round (default 5).
    #[serde(default = "five_u")]
    pub garp_master_repeat: u32,
    /// Seconds between refresh rounds while master (0: none, the default).
    #[serde(default)]
    pub garp_master_refresh: f64,
    /// Gratuitous ARPs per address in each refresh round (default 1).
    #[serde(default = "one_u")]
    pub garp_master_refresh_repeat: u32,
    /// Interfaces whose state moves the priority, or puts the instance in FAULT.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub track_interface: Vec<TrackConfig>,
    /// Scripts whose result moves the priority, or puts the instance in FAULT.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub track_script: Vec<TrackConfig>,
    /// Command run on becoming master.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_master: Option<String>,
    /// Command run on becoming backup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_backup: Option<String>,
    /// Command run on entering FAULT.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_fault: Option<String>,
    /// Command run when the instance stops.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_stop: Option<String>,
    /// Command run on every change, with `INSTANCE NAME STATE PRIORITY` appended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<String>,
}

/// A group of instances that change state together (`vrrp_sync_group NAME { group { … } }`).
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncGroupConfig {
    /// Its name.
    pub name: String,
    /// Its instances.
    pub group: Vec<String>,
    /// Commands run on the group's changes (as for instances).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_master: Option<String>,
    /// See `notify_master`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_backup: Option<String>,
    /// See `notify_master`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_fault: Option<String>,
    /// See `notify_master`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_stop: Option<String>,
    /// See the instance's `notify`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<String>,
}

/// What a director does with the sync protocol.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncRole {
    /// Sends its connections.
    Master,
    /// Installs the connections it receives.
    Backup,
    /// Both at once.
    Both,
}

/// `sync:` — IPVS's connection synchronisation (message version 1).
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncConfig {
    /// Interface the messages go out of and are received on.
    pub interface: String,
    /// The VRRP instance whose state gives the role (master sends, backup receives; as
    /// keepalived's `lvs_sync_daemon IF INSTANCE`). Without one, `role` decides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// The role when no instance is named (default both).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<SyncRole>,
    /// Sync id, 0..=255 (0: a backup accepts every id).
    #[serde(default)]
    pub syncid: u8,
    /// All-active directors (scale-out): this director's id, 1..=255, unique in the group. It
    /// sends with this id as its sync id and receives every id but its own, in both roles at
    /// once; connections it received are not sent on until it forwards them itself. Excludes
    /// `instance`, `role` and `syncid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub director_id: Option<u8>,
    /// Largest datagram payload (default: the interface's MTU − 28, at most 1472 on Ethernet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maxlen: Option<u16>,
    /// Multicast group (default 224.0.0.81).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<IpAddr>,
    /// UDP port (default 8848).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Multicast TTL (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u8>,
    /// Seconds in which every synced connection is sent again (default 10): a backup that
    /// starts late has the whole table after this long.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh: Option<u32>,
}

fn one_s() -> f64 {
    1.0
}
fn five_s() -> f64 {
    5.0
}
fn one_u() -> u32 {
    1
}
fn five_u() -> u32 {
    5
}
