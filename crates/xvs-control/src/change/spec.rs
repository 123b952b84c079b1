//! What a service or a real server is given: the fields of `-A/-E` and `-a/-e`, with the
//! rules that make them options of the service table (persistence, netmask defaults).

use super::apply::Refusal;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use xvs_core::service::{
    Family, Method, Persistence, RealOptions, SchedFlags, ServiceOptions, Tunnel, TunnelCsum,
    TunnelKind,
};

/// Forwarding method names in JSON and YAML.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum MethodName {
    /// Direct routing (`-g`).
    #[default]
    Dr,
    /// NAT (`-m`).
    Nat,
    /// IPIP tunnel (`-i`).
    Tun,
    /// FullNAT (`--fullnat`).
    Fullnat,
}

impl From<MethodName> for Method {
    fn from(m: MethodName) -> Method {
        match m {
            MethodName::Dr => Method::Dr,
            MethodName::Nat => Method::Nat,
            MethodName::Tun => Method::Tun,
            MethodName::Fullnat => Method::FullNat,
        }
    }
}

impl From<Method> for MethodName {
    fn from(m: Method) -> MethodName {
        match m {
            Method::Dr => MethodName::Dr,
            Method::Nat => MethodName::Nat,
            Method::Tun => MethodName::Tun,
            Method::FullNat => MethodName::Fullnat,
        }
    }
}

impl MethodName {
    /// The ipvsadm switch (`-g`, `-m`, `-i`; `--fullnat` is xvs's).
    pub const fn switch(self) -> &'static str {
        match self {
            MethodName::Dr => "-g",
            MethodName::Nat => "-m",
            MethodName::Tun => "-i",
            MethodName::Fullnat => "--fullnat",
        }
    }
}

fn default_scheduler() -> String {
    "wlc".into()
}

fn default_weight() -> u32 {
    1
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// A service's options as ipvsadm gives them: `-s`, `-b`, `-p`, `-M`, `-o`, and xvs's
/// `--laddr` (FullNAT local addresses).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceSpec {
    /// Scheduler (`-s`, default `wlc`).
    #[serde(default = "default_scheduler")]
    pub scheduler: String,
    /// Scheduler flags, comma-separated (`-b`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub flags: String,
    /// Persistence timeout in seconds (`-p`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistent: Option<u32>,
    /// Persistence netmask as a prefix length (`-M`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netmask: Option<u8>,
    /// One-packet scheduling (`-o`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub one_packet: bool,
    /// FullNAT local addresses (`--laddr`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub local_addrs: Vec<IpAddr>,
}

impl Default for ServiceSpec {
    fn default() -> Self {
        ServiceSpec {
            scheduler: default_scheduler(),
            flags: String::new(),
            persistent: None,
            netmask: None,
            one_packet: false,
            local_addrs: Vec::new(),
        }
    }
}

const fn full_mask(f: Family) -> u8 {
    match f {
        Family::V4 => 32,
        Family::V6 => 128,
    }
}

impl ServiceSpec {
    /// The core options for a service of `family`.
    pub fn options(&self, family: Family) -> Result<ServiceOptions, Refusal> {
        let flags = SchedFlags::parse(&self.flags).map_err(|m| Refusal::of("flags", m))?;
        if self.persistent == Some(0) {
            return Err(Refusal::of(
                "persistence.timeout",
                "persistence timeout must be at least 1 second",
            ));
        }
        if self.netmask.is_some() && self.persistent.is_none() {
            return Err(Refusal::of(
                "persistence.netmask",
                "a persistence netmask (-M) needs persistence (-p)",
            ));
        }
        Ok(ServiceOptions {
            scheduler: self.scheduler.clone(),
            flags,
            persistence: self.persistent.map(|timeout| Persistence {
                timeout,
                prefix_len: self.netmask.unwrap_or(full_mask(family)),
            }),
            one_packet: self.one_packet,
            local_addrs: self.local_addrs.clone(),
        })
    }

    /// The spec of existing options.
    pub fn of(o: &ServiceOptions, family: Family) -> ServiceSpec {
        ServiceSpec {
            scheduler: o.scheduler.clone(),
            flags: o.flags.to_string(),
            persistent: o.persistence.map(|p| p.timeout),
            netmask: o
                .persistence
                .map(|p| p.prefix_len)
                .filter(|&l| l != full_mask(family)),
            one_packet: o.one_packet,
            local_addrs: o.local_addrs.clone(),
        }
    }
}

/// A real server as ipvsadm gives it: `-r`, `-g|-m|-i|--fullnat`, `-w`, `-x`, `-y`.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RealSpec {
    /// Address (`-r`).
    pub addr: IpAddr,
    /// Port (the virtual port if absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Forwarding method (default `dr`, as ipvsadm's `-g`).
    #[serde(default)]
    pub method: MethodName,
    /// Weight (default 1).
    #[serde(default = "default_weight")]
    pub weight: u32,
    /// Upper connection threshold (`-x`, 0 = none).
    #[serde(default)]
    pub u_threshold: u32,
    /// Lower connection threshold (`-y`, 0 = none).
    #[serde(default)]
    pub l_threshold: u32,
    /// TUN: the encapsulation, `{ type: gue, port: 6080, csum: csum }` (`--tun-type`,
    /// `--tun-port`, `--tun-*csum`; IPIP when absent).
    #[serde(default, skip_serializing_if = "TunnelSpec::is_ipip")]
    pub tunnel: TunnelSpec,
}

/// ipvsadm's tunnel options of a TUN real server (absent: IPIP).
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TunnelSpec {
    /// `ipip` (default), `gue` or `gre` (`--tun-type`).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub tun_type: Option<TunTypeName>,
    /// GUE: the real server's UDP port (`--tun-port`; required with `gue`).
    #[serde(rename = "port", default, skip_serializing_if = "Option::is_none")]
    pub tun_port: Option<u16>,
    /// GUE and GRE: `nocsum` (default), `csum` or `remcsum` (GUE only) (`--tun-nocsum`,
    /// `--tun-csum`, `--tun-remcsum`).
    #[serde(rename = "csum", default, skip_serializing_if = "Option::is_none")]
    pub tun_csum: Option<TunCsumName>,
}

/// Tunnel types by name.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TunTypeName {
    /// IPv4 in IPv4 (IPv6 in IPv6).
    Ipip,
    /// Generic UDP encapsulation.
    Gue,
    /// Generic routing encapsulation.
    Gre,
}

/// Tunnel checksum choices by name.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TunCsumName {
    /// No checksum.
    Nocsum,
    /// The UDP (GUE) or GRE checksum.
    Csum,
    /// GUE remote checksum offload.
    Remcsum,
}

impl TunnelSpec {
    /// True if nothing is set (IPIP).
    pub fn is_ipip(&self) -> bool {
        *self == TunnelSpec::default()
    }

    /// The core's tunnel, or what ipvsadm (and the kernel) would refuse in these options for
    /// this forwarding method.
    pub fn tunnel(&self, method: MethodName) -> Result<Tunnel, String> {
        let any = self.tun_type.is_some() || self.tun_port.is_some() || self.tun_csum.is_some();
        if any && method != MethodName::Tun {
            return Err("tunnel options (--tun-type, --tun-port, --tun-*csum) need the tunnel forwarding method (-i)".into());
        }
        let kind = match self.tun_type.unwrap_or(TunTypeName::Ipip) {
            TunTypeName::Ipip => TunnelKind::Ipip,
            TunTypeName::Gue => TunnelKind::Gue,
            TunTypeName::Gre => TunnelKind::Gre,
        };
        let csum = match self.tun_csum.unwrap_or(TunCsumName::Nocsum) {
            TunCsumName::Nocsum => TunnelCsum::NoCsum,
            TunCsumName::Csum => TunnelCsum::Csum,
            TunCsumName::Remcsum => TunnelCsum::RemCsum,
        };
        match kind {
            TunnelKind::Gue if self.tun_port.is_none_or(|p| p == 0) => {
                return Err("a GUE tunnel needs its port (--tun-port)".into());
            }
            TunnelKind::Ipip | TunnelKind::Gre if self.tun_port.is_some() => {
                return Err("--tun-port is for GUE tunnels only".into());
            }
            TunnelKind::Ipip if self.tun_csum.is_some() => {
                return Err("tunnel checksum options are for GUE and GRE tunnels".into());
            }
            TunnelKind::Gre if csum == TunnelCsum::RemCsum => {
                return Err("--tun-remcsum is for GUE tunnels only".into());
            }
            _ => {}
        }
        Ok(Tunnel {
            kind,
            port: self.tun_port.unwrap_or(0),
            csum,
        })
    }

    /// The options of a core tunnel (IPIP gives none).
    pub fn of(t: &Tunnel) -> TunnelSpec {
        let tun_type = match t.kind {
            TunnelKind::Ipip => return TunnelSpec::default(),
            TunnelKind::Gue => TunTypeName::Gue,
            TunnelKind::Gre => TunTypeName::Gre,
        };
        TunnelSpec {
            tun_type: Some(tun_type),
            tun_port: (t.kind == TunnelKind::Gue).then_some(t.port),
            tun_csum: match t.csum {
                TunnelCsum::NoCsum => None,
                TunnelCsum::Csum => Some(TunCsumName::Csum),
                TunnelCsum::RemCsum => Some(TunCsumName::Remcsum),
            },
        }
    }

    /// ipvsadm's words for these options (for `-S`).
    pub fn words(&self) -> String {
        let mut w = String::new();
        if let Some(t) = self.tun_type {
            w.push_str(match t {
                TunTypeName::Ipip => " --tun-type ipip",
                TunTypeName::Gue => " --tun-type gue",
                TunTypeName::Gre => " --tun-type gre",
            });
        }
        if let Some(p) = self.tun_port {
            w.push_str(&format!(" --tun-port {p}"));
        }
        if let Some(c) = self.tun_csum {
            w.push_str(match c {
                TunCsumName::Nocsum => " --tun-nocsum",
                TunCsumName::Csum => " --tun-csum",
                TunCsumName::Remcsum => " --tun-remcsum",
            });
        }
        w
    }
}

impl RealSpec {
    /// The spec of an existing real server.
    pub fn of(r: &xvs_core::service::RealServer) -> RealSpec {
        RealSpec {
            addr: r.addr,
            port: Some(r.port),
            method: r.options.method.into(),
            weight: r.options.weight,
            u_threshold: r.options.u_threshold,
            l_threshold: r.options.l_threshold,
            tunnel: TunnelSpec::of(&r.options.tunnel),
        }
    }

    /// The core options (the tunnel checked first: [`TunnelSpec::tunnel`]).
    pub fn options(&self) -> RealOptions {
        RealOptions {
            method: self.method.into(),
            weight: self.weight,
            u_threshold: self.u_threshold,
            l_threshold: self.l_threshold,
            tunnel: self.tunnel.tunnel(self.method).unwrap_or_default(),
        }
    }
}
