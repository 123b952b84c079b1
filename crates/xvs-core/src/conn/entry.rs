//! One fixed-size (64-byte, cache-line aligned) connection-table entry.

use super::state;
use crate::service::Method;
use crate::{RealId, ServiceId};
use xvs_wire::flow::FlowKey;

/// What an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum EntryKind {
    /// A free slot.
    Empty = 0,
    /// The client → virtual service direction of a connection; owns its state.
    Forward = 1,
    /// The real server → client direction of a NAT/FullNAT connection; points at its forward
    /// entry ([`Entry::fwd_ref`]).
    Reply = 2,
    /// A persistence template: client network → real server.
    Template = 3,
}

/// A connection-table entry.
///
/// Field use by kind: a *forward* entry holds the real server, service, method, protocol state
/// and (FullNAT) the local address index and port; a *reply* entry holds the slot and serial of
/// its forward entry; a *template* holds the real server and service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C, align(64))]
pub struct Entry {
    /// The key this entry is found by.
    pub key: FlowKey,
    /// Expiry, in seconds of [`crate::Time`].
    pub expires: u32,
    /// Forward: this entry's serial. Reply: the forward entry's serial.
    pub serial: u32,
    /// What the entry leads to: forward and template entries their real server, reply
    /// entries the forward entry's index in its shard (read through [`Entry::real`] and
    /// [`Entry::fwd_ref`]).
    to_id: u32,
    /// With `to_id`: forward and template entries their service, reply entries the forward
    /// entry's shard.
    to_group: u16,
    /// What this entry is.
    pub kind: EntryKind,
    /// Protocol state (see [`state`]); for reply entries [`Entry::REPLIED`] once a reply
    /// other than a SYN-ACK came back.
    pub state: u8,
    /// Forwarding method code.
    method: u8,
    /// The worker (counter slot) that created the connection.
    pub worker: u8,
    /// FullNAT: index of the local address in the service's pool.
    pub laddr: u16,
    /// FullNAT: the local port.
    pub lport: u16,
    /// [`Entry::VERIFIED`] once a TCP connection has shown more than a handshake.
    pub flags: u8,
    /// Connection sync: the state last sent to the backups, plus one (0: never sent).
    pub synced: u8,
}

impl Entry {
    /// The state of a reply entry whose connection has seen a reply beyond the handshake.
    pub const REPLIED: u8 = 1;

    /// Flag: the TCP connection has shown more than a handshake (the client sent data, or the
    /// server answered through xvs). Until then an established entry keeps the short
    /// SYN_RECV timeout and is evicted like an embryonic one, so spoofed SYN-then-ACK pairs
    /// (DR sees the client's half only) cannot hold the table for the established timeout —
    /// IPVS's secure_tcp idea.
    pub const VERIFIED: u8 = 1;

    /// Flag: installed from another director's sync message and not forwarded here since.
    /// Such an entry is not sent on (each director sends the connections it forwards, as IPVS
    /// sends on packets): directors that all sync to each other never echo one another's
    /// connections, nor keep an ended one alive between them. The first packet forwarded here
    /// clears it.
    pub const FROM_PEER: u8 = 2;

    /// True if the entry is a TCP connection that has not shown more than a handshake.
    #[inline]
    pub fn unverified_tcp(&self) -> bool {
        self.key.proto() == xvs_wire::ip_proto::TCP && self.flags & Entry::VERIFIED == 0
    }

    /// The entry's timeout in its state: the state's, but an unverified established TCP
    /// connection keeps SYN_RECV's.
    #[inline]
    pub fn timeout(&self, t: &state::Timeouts) -> u32 {
        if self.state == state::tcp::ESTABLISHED && self.unverified_tcp() {
            t.of(self.key.proto(), state::tcp::SYN_RECV)
        } else {
            t.of(self.key.proto(), self.state)
        }
    }

    /// A free slot.
    pub const EMPTY: Entry = Entry {
        key: FlowKey::ZERO,
        expires: 0,
        serial: 0,
        to_id: 0,
        to_group: 0,
        kind: EntryKind::Empty,
        state: 0,
        method: 0,
        worker: 0,
        laddr: 0,
        lport: 0,
        flags: 0,
        synced: 0,
    };

    /// A forward entry.
    pub const fn forward(key: FlowKey, svc: ServiceId, real: RealId, method: Method) -> Entry {
        Entry {
            key,
            to_group: svc,
            to_id: real,
            kind: EntryKind::Forward,
            method: method.code(),
            ..Entry::EMPTY
        }
    }

    /// A persistence template.
    pub const fn template(key: FlowKey, svc: ServiceId, real: RealId) -> Entry {
        Entry {
            key,
            to_group: svc,
            to_id: real,
            kind: EntryKind::Template,
            ..Entry::EMPTY
        }
    }

    /// A reply entry pointing at the forward entry at `fwd`.
    pub const fn reply(key: FlowKey, fwd: super::SlotRef, fwd_serial: u32) -> Entry {
        Entry {
            key,
            serial: fwd_serial,
            to_id: fwd.index,
            to_group: fwd.shard,
            kind: EntryKind::Reply,
            ..Entry::EMPTY
        }
    }

    /// The forwarding method of a forward entry.
    #[inline]
    pub const fn method(&self) -> Method {
        Method::from_code(self.method)
    }

    /// Where the forward entry of a reply entry lives.
    #[inline]
    pub const fn fwd_ref(&self) -> super::SlotRef {
        super::SlotRef {
            shard: self.to_group,
            index: self.to_id,
        }
    }

    /// The real server of a forward or template entry.
    #[inline]
    pub const fn real(&self) -> RealId {
        self.to_id
    }

    /// The service of a forward or template entry.
    #[inline]
    pub const fn svc(&self) -> ServiceId {
        self.to_group
    }

    /// True if the entry's time is up at `now` (seconds).
    #[inline]
    pub const fn is_expired(&self, now: u32) -> bool {
        self.expires <= now
    }

    /// True if this entry should survive a table-full eviction in preference to embryonic ones.
    #[inline]
    pub fn is_established_class(&self) -> bool {
        match self.kind {
            EntryKind::Template => true,
            EntryKind::Reply => self.state == Entry::REPLIED,
            EntryKind::Forward => {
                state::is_established_class(self.key.proto(), self.state) && !self.unverified_tcp()
            }
            EntryKind::Empty => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_cache_line() {
        assert_eq!(size_of::<Entry>(), 64);
        assert_eq!(align_of::<Entry>(), 64);
    }

    #[test]
    fn method_roundtrip() {
        for m in [Method::Dr, Method::Nat, Method::Tun, Method::FullNat] {
            assert_eq!(Entry::forward(FlowKey::default(), 0, 0, m).method(), m);
        }
    }
}
