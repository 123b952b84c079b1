//! Connection synchronisation between directors, on IPVS's protocol (the kernel's
//! ip_vs_sync.c semantics): which connections a master sends and when, and how a backup
//! installs what it receives so that a failover breaks no established flow.
//!
//! Sending rides on the expiry sweep (the whole table once a second): a connection is sent
//! when it first reaches a synced state and whenever its state changes (TCP ESTABLISHED,
//! FIN_WAIT, CLOSE, CLOSE_WAIT, TIME_WAIT; UDP once steady; SCTP ESTABLISHED and after), and
//! again every `refresh` seconds while it lives (a hash of its key spreads the refreshes over
//! the period), so a backup that starts late has the whole table after one period.
//! Persistence templates go the same way. FullNAT connections are not synced (the protocol has
//! no field for the local address), nor are TCP connections that have not shown more than a
//! handshake (a forged one must not reach the backups).
//!
//! Installing binds a connection to the backup's own service (by VIP, port and protocol, or by
//! firewall mark) and real server (by address and port); its forwarding method is the
//! backup's, as IPVS takes it from its own destination. A NAT connection gets its reply entry
//! too. A connection already there with another real server is replaced; one with the same is
//! refreshed: its state and its expiry (now + the timeout in the message).

use super::Forwarder;
use super::flow::reply_key;
use crate::conn::Entry;
use crate::conn::{EntryKind, Insert, Lookup, state};
use crate::service::{Method, ServiceKey};
use crate::stats::{bump, decrement};
use crate::{Snapshot, Time};
use xvs_wire::flow::FlowKey;
use xvs_wire::ip_proto;
use xvs_wire::ipvs_sync::{SyncConn, flags};

/// Why a received connection was not installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SyncReject {
    /// No service with its VIP, port and protocol (or mark) here.
    UnknownService,
    /// The service has no real server with its address and port.
    UnknownReal,
    /// A protocol xvs does not balance.
    Protocol,
    /// A state outside its protocol's.
    State,
    /// The table had no room.
    TableFull,
    /// The service here forwards by FullNAT (no local address in the message).
    FullNat,
}

impl SyncReject {
    /// Its name in listings and metrics.
    pub const fn label(self) -> &'static str {
        match self {
            SyncReject::UnknownService => "unknown_service",
            SyncReject::UnknownReal => "unknown_real",
            SyncReject::Protocol => "protocol",
            SyncReject::State => "state",
            SyncReject::TableFull => "table_full",
            SyncReject::FullNat => "fullnat",
        }
    }
}

/// IPVS's SCTP state numbers for xvs's.
fn sctp_to_ipvs(s: u8) -> u16 {
    match s {
        state::sctp::INIT => 2,
        state::sctp::ESTABLISHED => 8,
        state::sctp::SHUTDOWN => 9,
        state::sctp::CLOSED => 13,
        _ => 0,
    }
}

fn sctp_from_ipvs(s: u16) -> Option<u8> {
    Some(match s {
        0 => state::sctp::NONE,
        1..=7 => state::sctp::INIT,
        8 => state::sctp::ESTABLISHED,
        9..=11 => state::sctp::SHUTDOWN,
        12 | 13 => state::sctp::CLOSED,
        _ => return None,
    })
}

/// True if a forward entry in this state is sent (IPVS's `ip_vs_sync_conn_needed`).
fn synced_state(e: &Entry) -> bool {
    match e.key.proto() {
        ip_proto::TCP => {
            !e.unverified_tcp()
                && matches!(
                    e.state,
                    state::tcp::ESTABLISHED
                        | state::tcp::FIN_WAIT
                        | state::tcp::CLOSE
                        | state::tcp::CLOSE_WAIT
                        | state::tcp::TIME_WAIT
                )
        }
        ip_proto::UDP => e.state == state::udp::SEEN,
        ip_proto::SCTP => e.state >= state::sctp::ESTABLISHED,
        _ => false,
    }
}

fn method_flags(m: Method) -> u32 {
    match m {
        Method::Nat | Method::FullNat => flags::MASQ,
        // Every non-NAT destination carries NOOUTPUT in IPVS (0x80).
        Method::Tun => flags::TUNNEL | 0x80,
        Method::Dr => flags::DROUTE | 0x80,
    }
}

impl Forwarder {
    /// [`Forwarder::sweep`] of `count` shards from `first` that also appends to `out` the
    /// connections and templates to send now (see the module's description); `second` and
    /// `refresh` pick the refreshes. Returns the number of entries expired.
    pub fn sweep_export(
        &mut self,
        snap: &Snapshot,
        first: usize,
        count: usize,
        now: Time,
        refresh: u32,
        out: &mut Vec<SyncConn>,
    ) -> usize {
        let cx = Self::ctx(&self.table, &self.stats, snap, self.lane.slot, now);
        let secs = cx.now;
        let refresh = refresh.max(1);
        let table = &*self.table;
        let shards = table.shard_count();
        if self.lane.export_seen.len() != shards {
            self.lane.export_seen = vec![secs.saturating_sub(1); shards];
        }
        let mut gone = Vec::new();
        let mut n = 0;
        for shard in first..first.saturating_add(count).min(shards) {
            // An entry is due when its refresh second fell since the shard's last sweep: a
            // second the sweep skipped (a busy control thread) delays it, never loses it.
            let last = std::mem::replace(&mut self.lane.export_seen[shard], secs);
            let elapsed = secs.saturating_sub(last);
            let (r, first_new) = (u64::from(refresh), u64::from(last) + 1);
            let due =
                |h: u64| elapsed >= refresh || (h % r + r - first_new % r) % r < u64::from(elapsed);
            n += table.sweep_visit(
                shard,
                1,
                secs,
                |e| gone.push(*e),
                |e| {
                    let send = match e.kind {
                        _ if e.flags & Entry::FROM_PEER != 0 => false,
                        EntryKind::Forward => synced_state(e),
                        EntryKind::Template => true,
                        _ => false,
                    };
                    if !send {
                        return;
                    }
                    let fresh = e.synced != e.state.wrapping_add(1);
                    if !(fresh || due(table.hash(&e.key))) {
                        return;
                    }
                    if let Some(c) = export(snap, e, secs) {
                        e.synced = e.state.wrapping_add(1);
                        out.push(c);
                    }
                },
            );
        }
        for e in &gone {
            self.lane.removed(&cx, e);
        }
        bump(&cx.c.conns_expired, n as u64);
        n
    }

    /// Installs (or refreshes) a connection a master sent.
    pub fn install_synced(
        &mut self,
        snap: &Snapshot,
        c: &SyncConn,
        now: Time,
    ) -> Result<(), SyncReject> {
        let cx = Self::ctx(&self.table, &self.stats, snap, self.lane.slot, now);
        let svcs = &snap.services;
        let template = c.flags & flags::TEMPLATE != 0;
        let proto = c.protocol;
        let family = if c.v6 {
            crate::service::Family::V6
        } else {
            crate::service::Family::V4
        };
        // The service: by mark, else by address.
        let svc = if c.fwmark != 0 || (template && proto == 0) {
            let mark = if c.fwmark != 0 {
                c.fwmark
            } else {
                u32::from_be_bytes([c.vaddr[12], c.vaddr[13], c.vaddr[14], c.vaddr[15]])
            };
            svcs.find(&ServiceKey::Fwmark { mark, family })
        } else {
            if !matches!(proto, ip_proto::TCP | ip_proto::UDP | ip_proto::SCTP) {
                return Err(SyncReject::Protocol);
            }
            svcs.lookup(family, proto, &c.vaddr, c.vport)
        }
        .ok_or(SyncReject::UnknownService)?;
        let daddr = crate::service::ip_from16(&c.daddr);
        let real = svc
            .reals
            .iter()
            .filter_map(|&r| svcs.real(r))
            .find(|r| {
                r.addr == daddr && (r.port == c.dport || r.port == 0 || c.dport == 0 || template)
            })
            .ok_or(SyncReject::UnknownReal)?;
        let method = real.options.method;
        if method == Method::FullNat {
            return Err(SyncReject::FullNat);
        }
        let expires = cx.now.saturating_add(c.timeout.min(86_400 * 31));
        if template {
            let key = FlowKey::flow(
                if c.v6 { 6 } else { 4 },
                proto,
                c.caddr,
                0,
                c.vaddr,
                c.vport,
            )
            .with_tag(crate::conn::key_tag_template());
            let h = cx.table.hash(&key);
            let mut t = Entry::template(key, svc.id, real.id);
            t.flags = Entry::FROM_PEER;
            t.expires = expires;
            return put(&self.lane, &cx, h, t);
        }
        let st = match proto {
            ip_proto::TCP if c.state <= 10 => c.state as u8,
            ip_proto::UDP => state::udp::SEEN,
            ip_proto::SCTP => sctp_from_ipvs(c.state).ok_or(SyncReject::State)?,
            _ => return Err(SyncReject::State),
        };
        let key = FlowKey::flow(
            if c.v6 { 6 } else { 4 },
            proto,
            c.caddr,
            c.cport,
            c.vaddr,
            c.vport,
        );
        let h = cx.table.hash(&key);
        // Refreshed in place if it leads to the same real server.
        let same = cx.table.lookup(&key, h, cx.now, |e, _| {
            if e.kind == EntryKind::Forward && e.real() == real.id {
                let was_active = state::is_active(proto, e.state);
                e.state = st;
                e.expires = e.expires.max(expires);
                e.flags |= Entry::VERIFIED;
                e.synced = st.wrapping_add(1);
                Some(was_active)
            } else {
                None
            }
        });
        match same {
            Lookup::Hit(Some(was_active)) => {
                let active = state::is_active(proto, st);
                if was_active != active
                    && let Some(rc) = cx.c.real(real.id)
                {
                    bump(if active { &rc.active } else { &rc.inactive }, 1);
                    decrement(if was_active { &rc.active } else { &rc.inactive });
                }
                return Ok(());
            }
            Lookup::Hit(None) | Lookup::Expired(_) => {
                // Another server (or expired): the old entry goes.
                if let Some(old) = cx.table.remove(&key, h, |_| true) {
                    self.lane.removed(&cx, &old);
                }
            }
            Lookup::Miss => {}
        }
        let mut e = Entry::forward(key, svc.id, real.id, method);
        e.state = st;
        e.expires = expires;
        e.flags = Entry::VERIFIED | Entry::FROM_PEER;
        // Sent by another director: this one sends it on only once it forwards it.
        e.synced = st.wrapping_add(1);
        let (slot, serial) = match cx.table.insert(h, e, cx.now) {
            Insert::Inserted {
                slot,
                serial,
                displaced,
            } => {
                self.lane.displaced(&cx, displaced);
                (slot, serial)
            }
            Insert::Exists => return Ok(()),
            Insert::Full => return Err(SyncReject::TableFull),
        };
        if method.is_two_way() {
            let rk = reply_key(&key, real, None, 0);
            let rh = cx.table.hash(&rk);
            let mut r = Entry::reply(rk, slot, serial);
            r.expires = expires;
            r.state = Entry::REPLIED;
            if let Insert::Inserted { displaced, .. } = cx.table.insert(rh, r, cx.now) {
                self.lane.displaced(&cx, displaced);
            }
        }
        if let Some(rc) = cx.c.real(real.id) {
            bump(
                if state::is_active(proto, st) {
                    &rc.active
                } else {
                    &rc.inactive
                },
                1,
            );
        }
        Ok(())
    }
}

/// Inserts or refreshes a template.
fn put(lane: &super::Lane, cx: &super::Ctx<'_>, h: u64, t: Entry) -> Result<(), SyncReject> {
    let refreshed = cx.table.lookup(&t.key, h, cx.now, |e, _| {
        if e.kind == EntryKind::Template && e.real() == t.real() {
            e.expires = e.expires.max(t.expires);
            true
        } else {
            false
        }
    });
    if matches!(refreshed, Lookup::Hit(true)) {
        return Ok(());
    }
    if let Some(old) = cx.table.remove(&t.key, h, |_| true) {
        lane.removed(cx, &old);
    }
    match cx.table.insert(h, t, cx.now) {
        Insert::Inserted { displaced, .. } => {
            lane.displaced(cx, displaced);
            if let Some(rc) = cx.c.real(t.real()) {
                bump(&rc.persist, 1);
            }
            Ok(())
        }
        Insert::Exists => Ok(()),
        Insert::Full => Err(SyncReject::TableFull),
    }
}

/// The message form of a forward entry or template (`None` for what is not sent).
fn export(snap: &Snapshot, e: &Entry, now: u32) -> Option<SyncConn> {
    let svc = snap.services.service(e.svc())?;
    let real = snap.services.real(e.real())?;
    let v6 = e.key.version() == 6;
    let fwmark = match svc.key {
        ServiceKey::Fwmark { mark, .. } => mark,
        ServiceKey::Addr { .. } => 0,
    };
    let timeout = e.expires.saturating_sub(now).max(1);
    let mut c = SyncConn {
        v6,
        protocol: e.key.proto(),
        flags: method_flags(real.options.method),
        state: 0,
        cport: e.key.sport(),
        vport: e.key.dport(),
        dport: if real.port == 0 {
            e.key.dport()
        } else {
            real.port
        },
        fwmark,
        timeout,
        caddr: e.key.src(),
        vaddr: e.key.dst(),
        daddr: real.addr16(),
    };
    match e.kind {
        EntryKind::Template => {
            if real.options.method == Method::FullNat {
                return None;
            }
            c.flags |= flags::TEMPLATE | flags::INACTIVE;
            c.state = 1; // IP_VS_CTPL_S_ASSURED
            c.cport = 0;
            svc.options.persistence?;
        }
        EntryKind::Forward => {
            if e.method() == Method::FullNat {
                return None;
            }
            c.state = match e.key.proto() {
                ip_proto::TCP => u16::from(e.state),
                ip_proto::SCTP => sctp_to_ipvs(e.state),
                _ => 0,
            };
            if !state::is_active(e.key.proto(), e.state) {
                c.flags |= flags::INACTIVE;
            }
            // Sent with the state's full timeout, as IPVS does.
            c.timeout = snap.timeouts.of(e.key.proto(), e.state).max(1);
        }
        _ => return None,
    }
    Some(c)
}
