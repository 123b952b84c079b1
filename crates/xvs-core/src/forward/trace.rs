//! `xvsadm trace`: what the forwarder would do with a packet, and why, answered by the same
//! lookups the workers run (connection table, persistence templates, service lookup, the
//! service's scheduler) on the live snapshot, without creating anything.

use super::flow::Admit;
use super::{Ctx, Lane};
use crate::conn::state::state_name;
use crate::conn::{EntryKind, FlowKey, Lookup};
use crate::{RealId, ServiceId};
use xvs_wire::ip_proto;
use xvs_wire::summary::IpSummary;
use xvs_wire::tcp::flags;

/// The answer to a trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trace {
    /// The packet would open a connection but its source cannot be a client's: dropped, as
    /// `martian`, and nothing is created.
    Martian {
        /// The service it was for.
        svc: ServiceId,
    },
    /// No service matches and no connection exists: the packet goes to the host stack.
    NoService,
    /// A service matches but the packet cannot open a connection (TCP without SYN, SCTP
    /// without INIT): the host stack gets it, as with IPVS.
    NotOpening {
        /// The service.
        svc: ServiceId,
    },
    /// An existing connection carries it to its real server.
    Connection {
        /// The service.
        svc: ServiceId,
        /// The real server.
        real: RealId,
        /// The connection's state.
        state: &'static str,
        /// Seconds left before it expires.
        expires_in: u32,
        /// True if that real server was removed (the connection finishes on it unless
        /// `expire_nodest_conn`).
        real_removed: bool,
    },
    /// The packet is a real server's reply on a NAT/FullNAT connection: back to the client.
    Reply {
        /// The service.
        svc: ServiceId,
        /// The real server that sent it.
        real: RealId,
        /// The connection's state.
        state: &'static str,
    },
    /// A persistence template sends this client to a real server.
    Persistent {
        /// The service.
        svc: ServiceId,
        /// The real server.
        real: RealId,
        /// Seconds left on the template.
        expires_in: u32,
    },
    /// The service's scheduler picks a real server for a new connection.
    Scheduled {
        /// The service.
        svc: ServiceId,
        /// The real server.
        real: RealId,
    },
    /// The service has no available real server: dropped with an ICMP unreachable.
    NoRealServer {
        /// The service.
        svc: ServiceId,
    },
}

enum Found {
    Fwd {
        svc: ServiceId,
        real: RealId,
        state: u8,
        expires: u32,
        proto: u8,
    },
    Reply {
        slot: crate::conn::SlotRef,
        serial: u32,
    },
    Other,
}

impl Lane {
    /// See [`super::Forwarder::trace`].
    pub(super) fn trace(&mut self, cx: &Ctx<'_>, key: FlowKey, tcp_flags: u8) -> Trace {
        let (table, snap) = (cx.table, cx.snap);
        let hash = table.hash(&key);
        let found = table.lookup(&key, hash, cx.now, |e, _| match e.kind {
            EntryKind::Forward => Found::Fwd {
                svc: e.svc(),
                real: e.real(),
                state: e.state,
                expires: e.expires,
                proto: e.key.proto(),
            },
            EntryKind::Reply => Found::Reply {
                slot: e.fwd_ref(),
                serial: e.serial,
            },
            _ => Found::Other,
        });
        match found {
            Lookup::Hit(Found::Fwd {
                svc,
                real,
                state,
                expires,
                proto,
            }) => {
                let removed = snap.services.real(real).is_none_or(|r| r.removed || !r.up);
                if !(removed && snap.options.expire_nodest_conn) {
                    return Trace::Connection {
                        svc,
                        real,
                        state: state_name(proto, state),
                        expires_in: expires.saturating_sub(cx.now),
                        real_removed: removed,
                    };
                }
            }
            Lookup::Hit(Found::Reply { slot, serial }) => {
                if let Lookup::Hit((svc, real, st)) = table.with_slot(slot, serial, cx.now, |e| {
                    (e.svc(), e.real(), state_name(e.key.proto(), e.state))
                }) {
                    return Trace::Reply {
                        svc,
                        real,
                        state: st,
                    };
                }
            }
            Lookup::Hit(Found::Other) | Lookup::Miss => {}
            Lookup::Expired(e) => self.removed(cx, &e),
        }
        let s = IpSummary {
            key,
            tcp_flags,
            ..IpSummary::EMPTY
        };
        // A trace names TCP flags; for SCTP, `syn` stands for an INIT chunk, anything else
        // for a chunk of an association (DATA).
        let chunk = (key.proto() == ip_proto::SCTP).then_some(if tcp_flags & flags::SYN != 0 {
            xvs_wire::sctp::chunk::INIT
        } else {
            xvs_wire::sctp::chunk::DATA
        });
        match self.admit(cx, &s, chunk, None, true) {
            Admit::NoService => Trace::NoService,
            Admit::NotOpening(svc) => Trace::NotOpening { svc: svc.id },
            Admit::NoReal(svc) => Trace::NoRealServer { svc: svc.id },
            Admit::Martian(svc) => Trace::Martian { svc: svc.id },
            // Only a frame's checksum can be wrong, and a trace has no frame.
            Admit::BadChecksum => Trace::NoService,
            Admit::Picked {
                svc,
                real,
                template: Some(left),
            } => Trace::Persistent {
                svc: svc.id,
                real: real.id,
                expires_in: left,
            },
            Admit::Picked { svc, real, .. } => Trace::Scheduled {
                svc: svc.id,
                real: real.id,
            },
        }
    }
}
