//! Applying changes to a service table: one at a time, or a batch that is all or nothing.

use super::{Change, MethodName, RealSpec, ServiceSpec};
use std::fmt;
use xvs_core::conn::Timeouts;
use xvs_core::service::{ConfigError, ServiceKey, ServiceTable};

/// Why one change was refused, and which of its fields was at fault (named as the
/// configuration file names it: `scheduler`, `persistence.timeout`, `weight`, …), where one
/// field was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The field at fault.
    pub field: Option<&'static str>,
    /// What was wrong, in ipvsadm's words where ipvsadm has them.
    pub message: String,
}

impl Refusal {
    /// A refusal of `field`.
    pub fn of(field: &'static str, message: impl Into<String>) -> Refusal {
        Refusal {
            field: Some(field),
            message: message.into(),
        }
    }

    /// A refusal of the change as a whole.
    pub fn whole(message: impl Into<String>) -> Refusal {
        Refusal {
            field: None,
            message: message.into(),
        }
    }
}

impl From<ConfigError> for Refusal {
    fn from(e: ConfigError) -> Refusal {
        let field = match &e {
            ConfigError::UnknownScheduler(_) => Some("scheduler"),
            ConfigError::OutOfRange { what: "weight", .. } => Some("weight"),
            ConfigError::OutOfRange {
                what: "persistence netmask",
                ..
            } => Some("persistence.netmask"),
            _ => None,
        };
        Refusal {
            field,
            message: e.to_string(),
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// A rejected batch: which change (0-based) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// Index of the change in the batch.
    pub index: usize,
    /// The change, as an ipvsadm line.
    pub change: String,
    /// What was wrong.
    pub message: String,
    /// The field at fault, if one was.
    pub field: Option<&'static str>,
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Applies one change to `table` and `timeouts`.
pub fn apply_one(
    table: &mut ServiceTable,
    timeouts: &mut Timeouts,
    c: &Change,
) -> Result<(), Refusal> {
    let e = Refusal::from;
    match c {
        Change::AddService { service, spec } => {
            check_zero_port(&service.0, spec)?;
            let o = spec.options(service.0.family())?;
            table.add_service(service.0, o).map(|_| ()).map_err(e)
        }
        Change::EditService { service, spec } => {
            check_zero_port(&service.0, spec)?;
            let o = spec.options(service.0.family())?;
            table.edit_service(&service.0, o).map_err(e)
        }
        Change::DeleteService { service } => table.remove_service(&service.0).map_err(e),
        Change::AddReal { service, real } | Change::EditReal { service, real } => {
            real.tunnel.tunnel(real.method).map_err(|message| Refusal {
                field: Some("tun_type"),
                message,
            })?;
            let (key, port, options) = (&service.0, real_port(&service.0, real), real.options());
            let done = if matches!(c, Change::AddReal { .. }) {
                table.add_real(key, real.addr, port, options).map(drop)
            } else {
                table.edit_real(key, real.addr, port, options)
            };
            done.map_err(|x| not_defined(x, key))
        }
        Change::DeleteReal {
            service,
            addr,
            port,
        } => table
            .remove_real(&service.0, *addr, *port)
            .map(|_| ())
            .map_err(|x| not_defined(x, &service.0)),
        Change::Clear => {
            table.clear();
            Ok(())
        }
        Change::SetTimeouts { tcp, tcpfin, udp } => {
            timeouts.set_ipvsadm(*tcp, *tcpfin, *udp);
            Ok(())
        }
    }
}

/// ipvsadm says "Service not defined" when a real-server command names a missing service.
fn not_defined(e: ConfigError, k: &ServiceKey) -> Refusal {
    match e {
        ConfigError::NoSuchService(_) => Refusal::whole(format!("Service not defined: {k}")),
        other => other.into(),
    }
}

/// DR and TUN real servers listen on the virtual port (ipvsadm forces it); NAT and FullNAT
/// may map to another port.
pub(crate) fn real_port(k: &ServiceKey, r: &RealSpec) -> Option<u16> {
    match (k, r.method) {
        (ServiceKey::Addr { port, .. }, MethodName::Dr | MethodName::Tun) => Some(*port),
        _ => r.port,
    }
}

fn check_zero_port(k: &ServiceKey, s: &ServiceSpec) -> Result<(), Refusal> {
    if matches!(k, ServiceKey::Addr { port: 0, .. }) && s.persistent.is_none() {
        return Err(Refusal::of(
            "port",
            "Zero port specified for non-persistent service",
        ));
    }
    Ok(())
}

/// Applies a batch to copies of `table` and `timeouts`; returns the new pair, or the first
/// change that failed (the originals are untouched either way).
pub fn apply(
    table: &ServiceTable,
    timeouts: &Timeouts,
    changes: &[Change],
) -> Result<(ServiceTable, Timeouts), Rejected> {
    let (mut t, mut to) = (table.clone(), *timeouts);
    for (index, c) in changes.iter().enumerate() {
        apply_one(&mut t, &mut to, c).map_err(|r| Rejected {
            index,
            change: c.to_string(),
            message: r.message,
            field: r.field,
        })?;
    }
    Ok((t, to))
}
