//! Health checks of real servers (keepalived's `TCP_CHECK`, `HTTP_GET`, `SSL_GET`,
//! `UDP_CHECK`, `MISC_CHECK`): what the configuration and xvsadm say, validated.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::IpAddr;
use xvs_core::service::ServiceKey;

/// Which probe.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckKind {
    /// TCP connect (`TCP_CHECK`).
    Tcp,
    /// HTTP GET (`HTTP_GET`).
    Http,
    /// HTTPS GET (`SSL_GET`); the certificate is not verified, as keepalived does not.
    Https,
    /// A UDP request, optionally with an expected response (`UDP_CHECK`).
    Udp,
    /// An external command; exit status 0 = healthy (`MISC_CHECK`).
    Misc,
}

/// The state a server starts in before its first check result.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum StartState {
    /// Up (keepalived's default).
    #[default]
    Up,
    /// Down until `rise` checks succeed (keepalived's `alpha`).
    Down,
}

impl std::str::FromStr for CheckKind {
    type Err = String;
    fn from_str(s: &str) -> Result<CheckKind, String> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "tcp" => CheckKind::Tcp,
            "http" => CheckKind::Http,
            "https" => CheckKind::Https,
            "udp" => CheckKind::Udp,
            "misc" => CheckKind::Misc,
            _ => {
                return Err(format!(
                    "unknown checker '{s}' (tcp, http, https, udp, misc)"
                ));
            }
        })
    }
}

impl std::str::FromStr for StartState {
    type Err = String;
    fn from_str(s: &str) -> Result<StartState, String> {
        match s.to_ascii_lowercase().as_str() {
            "up" => Ok(StartState::Up),
            "down" => Ok(StartState::Down),
            _ => Err(format!("'{s}' is not up or down")),
        }
    }
}

fn two() -> f64 {
    2.0
}
fn one() -> f64 {
    1.0
}
fn one_u() -> u32 {
    1
}

/// A health check.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckConfig {
    /// `tcp`, `http`, `https`, `udp` or `misc`.
    #[serde(rename = "type")]
    pub kind: CheckKind,
    /// Port to probe (the real server's port if absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// HTTP(S): the path to GET.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// HTTP(S): acceptable status codes (default 200).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub status: Vec<u16>,
    /// HTTP(S): MD5 of the body, hex (keepalived's `digest`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// HTTP(S): a substring the body must contain; UDP: the response must contain it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect: Option<String>,
    /// HTTP(S): the Host header (the real server's address if absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// UDP: the request payload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send: Option<String>,
    /// MISC: the command (run with `sh -c`; XVS_REAL_ADDR and XVS_REAL_PORT are set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// Seconds between checks (keepalived's `delay_loop`; default 2).
    #[serde(default = "two")]
    pub interval: f64,
    /// Seconds a check may take (keepalived's `connect_timeout`; default 1).
    #[serde(default = "one")]
    pub timeout: f64,
    /// Successes in a row to come back up (default 1).
    #[serde(default = "one_u")]
    pub rise: u32,
    /// Seconds until a failed check is tried again while the server is still up
    /// (keepalived's `delay_before_retry`; default: the interval).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_interval: Option<f64>,
    /// Failures in a row to go down (keepalived's `retry` + 1; default 1).
    #[serde(default = "one_u")]
    pub fall: u32,
    /// State before the first result.
    #[serde(default)]
    pub start: StartState,
}

impl CheckConfig {
    /// The first problem: the field (relative to the check) and what is wrong.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        let positive = |v: f64| v.is_finite() && v > 0.0 && v <= 86_400.0;
        if !positive(self.interval) {
            return Err((
                "interval",
                format!(
                    "{} is not a positive number of seconds (at most 86400)",
                    self.interval
                ),
            ));
        }
        if !positive(self.timeout) {
            return Err((
                "timeout",
                format!(
                    "{} is not a positive number of seconds (at most 86400)",
                    self.timeout
                ),
            ));
        }
        if let Some(r) = self.retry_interval
            && !positive(r)
        {
            return Err((
                "retry_interval",
                format!("{r} is not a positive number of seconds (at most 86400)"),
            ));
        }
        if self.rise == 0 {
            return Err(("rise", "must be at least 1".into()));
        }
        if self.fall == 0 {
            return Err(("fall", "must be at least 1".into()));
        }
        match self.kind {
            CheckKind::Http | CheckKind::Https => {
                let Some(p) = &self.path else {
                    return Err((
                        "path",
                        "missing: the URL path to GET (for example /health)".into(),
                    ));
                };
                if !p.starts_with('/') || p.contains(char::is_whitespace) {
                    return Err((
                        "path",
                        format!("'{p}' is not a URL path (it starts with / and has no spaces)"),
                    ));
                }
                if let Some(s) = self.status.iter().find(|s| !(100..=599).contains(*s)) {
                    return Err(("status", format!("{s} is not an HTTP status code")));
                }
                if let Some(d) = &self.digest {
                    if d.len() != 32 || !d.bytes().all(|b| b.is_ascii_hexdigit()) {
                        return Err((
                            "digest",
                            format!("'{d}' is not an MD5 digest (32 hex digits)"),
                        ));
                    }
                }
            }
            CheckKind::Misc => {
                if self.command.as_deref().is_none_or(|c| c.trim().is_empty()) {
                    return Err(("command", "missing: the command to run".into()));
                }
            }
            CheckKind::Tcp | CheckKind::Udp => {}
        }
        Ok(())
    }

    /// The status codes that count as healthy.
    pub fn statuses(&self) -> Vec<u16> {
        if self.status.is_empty() {
            vec![200]
        } else {
            self.status.clone()
        }
    }
}

/// A short description: `HTTP GET :8080/health [200]`, `TCP :80`, `MISC /bin/check`.
impl fmt::Display for CheckConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let port = self.port.map(|p| format!(":{p}")).unwrap_or_default();
        match self.kind {
            CheckKind::Tcp => write!(f, "TCP{port}"),
            CheckKind::Udp => write!(f, "UDP{port}"),
            CheckKind::Http | CheckKind::Https => {
                let codes: Vec<String> = self.statuses().iter().map(u16::to_string).collect();
                write!(
                    f,
                    "{} GET {port}{} [{}]",
                    if self.kind == CheckKind::Http {
                        "HTTP"
                    } else {
                        "HTTPS"
                    },
                    self.path.as_deref().unwrap_or("/"),
                    codes.join(",")
                )
            }
            CheckKind::Misc => write!(f, "MISC {}", self.command.as_deref().unwrap_or("")),
        }
    }
}

/// The check of one real server, with its notification commands.
#[derive(Debug, Clone, PartialEq)]
pub struct RealCheck {
    /// Real server address.
    pub addr: IpAddr,
    /// Real server port.
    pub port: u16,
    /// The check.
    pub check: CheckConfig,
    /// Command run when it comes up.
    pub notify_up: Option<String>,
    /// Command run when it goes down.
    pub notify_down: Option<String>,
}

/// Health settings of one service.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ServiceHealth {
    /// Set weight 0 on failure instead of removing the server from the listing
    /// (both stop new connections).
    pub inhibit_on_failure: bool,
    /// Withdraw the service (and its VIP from the XDP map) below this many healthy servers.
    pub quorum: u32,
    /// Checks of its real servers.
    pub checks: Vec<RealCheck>,
}

/// Health settings of every service.
pub type Health = Vec<(ServiceKey, ServiceHealth)>;

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(y: &str) -> CheckConfig {
        serde_yaml_ng::from_str(y).unwrap()
    }

    #[test]
    fn defaults_and_descriptions() {
        let c = parse("{ type: http, path: /health }");
        assert_eq!(
            (c.interval, c.timeout, c.rise, c.fall, c.start),
            (2.0, 1.0, 1, 1, StartState::Up)
        );
        assert_eq!(c.validate(), Ok(()));
        assert_eq!(c.to_string(), "HTTP GET /health [200]");
        assert_eq!(parse("{ type: tcp, port: 8080 }").to_string(), "TCP:8080");
    }

    #[test]
    fn bad_checks_say_which_field() {
        for (y, field) in [
            ("{ type: tcp, interval: -1 }", "interval"),
            ("{ type: tcp, timeout: 0 }", "timeout"),
            ("{ type: tcp, rise: 0 }", "rise"),
            ("{ type: http }", "path"),
            ("{ type: https, path: health }", "path"),
            ("{ type: http, path: /, status: [700] }", "status"),
            ("{ type: http, path: /, digest: abc }", "digest"),
            ("{ type: misc }", "command"),
        ] {
            assert_eq!(parse(y).validate().unwrap_err().0, field, "{y}");
        }
        assert!(serde_yaml_ng::from_str::<CheckConfig>("{ type: smtp }").is_err());
    }
}
