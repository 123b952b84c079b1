//! Connection handling for TCP, UDP and SCTP: lookup, state tracking, scheduling (with
//! persistence templates and one-packet scheduling), entry creation and removal bookkeeping.

use super::cache::Cached;
use super::fast::STATE_FLAGS;
use super::{Ctx, Lane, Verdict};
use crate::conn::state::{self, Direction};
use crate::conn::{Displaced, Entry, EntryKind, FlowKey, Insert, Lookup, SlotRef, Vacancy};
use crate::drop_reason::DropReason;
use crate::sched::{Dests, Request};
use crate::service::{Method, Persistence, RealServer, Service, ServiceKey, addr16, mask_addr};
use crate::stats::{bump, decrement};
use crate::{RealId, ServiceId};
use xvs_wire::ip_proto;
use xvs_wire::ipv4::Ipv4Packet;
use xvs_wire::summary::IpSummary;
use xvs_wire::tcp::flags;

/// What the forward entry of a connection says, copied out under the shard lock (kept small:
/// the key is copied only where the reply path needs it).
#[derive(Debug, Clone, Copy)]
pub(super) struct FwdInfo {
    pub real: RealId,
    pub svc: ServiceId,
    pub laddr: u16,
    pub lport: u16,
    pub method: Method,
    pub proto: u8,
    pub old_state: u8,
    pub new_state: u8,
    /// TCP: the connection has shown more than a handshake ([`Entry::VERIFIED`]).
    pub verified: bool,
}

impl FwdInfo {
    #[inline(always)]
    pub(super) fn of(e: &Entry, old_state: u8) -> FwdInfo {
        FwdInfo {
            real: e.real(),
            svc: e.svc(),
            laddr: e.laddr,
            lport: e.lport,
            method: e.method(),
            proto: e.key.proto(),
            old_state,
            new_state: e.state,
            verified: e.flags & Entry::VERIFIED != 0,
        }
    }
}

/// What [`Lane::admit`] decided for a packet without a connection.
pub(super) enum Admit<'s> {
    /// No virtual service: the host's.
    NoService,
    /// The service's, but not an opening packet: the host's.
    NotOpening(&'s Service),
    /// An IPv4 header with a wrong checksum.
    BadChecksum,
    /// No real server available.
    NoReal(&'s Service),
    /// The source cannot be a client's ([`martian_source`]): dropped, nothing created.
    Martian(&'s Service),
    /// A real server; `template` is the seconds left on the persistence template that chose
    /// it, if one did.
    Picked {
        svc: &'s Service,
        real: &'s RealServer,
        template: Option<u32>,
    },
}

enum Hit {
    Fwd(FwdInfo),
    Reply { fwd: SlotRef, serial: u32 },
    Other,
}

/// The first SCTP chunk type of the packet, if SCTP.
pub(super) fn sctp_chunk(d: &[u8], s: &IpSummary) -> Option<u8> {
    if s.key.proto() == ip_proto::SCTP {
        d.get(s.l4_offset + xvs_wire::sctp::HEADER_LEN).copied()
    } else {
        None
    }
}

/// Advances a connection's state for one packet.
fn advance(proto: u8, dir: Direction, st: u8, tcp_flags: u8, chunk: Option<u8>) -> u8 {
    match proto {
        ip_proto::TCP => state::tcp_next(dir, st, tcp_flags),
        ip_proto::SCTP => state::sctp_next(st, chunk),
        // Entries are created NEW; any further packet, either way, makes a UDP flow SEEN.
        ip_proto::UDP => state::udp::SEEN,
        _ => st,
    }
}

/// The key of the persistence template for a client of `svc`: the client's network (masked
/// with the persistence netmask), the service's address and port, or its mark.
pub(super) fn template_key(svc: &Service, key: &FlowKey, p: Persistence) -> FlowKey {
    let v6 = key.version() == 6;
    let bits = u32::from(p.prefix_len) + if v6 { 0 } else { 96 };
    let (dst, proto) = match svc.key {
        ServiceKey::Addr { .. } => (key.dst(), key.proto()),
        ServiceKey::Fwmark { mark, .. } => {
            let mut d = [0u8; 16];
            d[12..].copy_from_slice(&mark.to_be_bytes());
            (d, 0)
        }
    };
    FlowKey::flow(
        key.version(),
        proto,
        mask_addr(&key.src(), bits),
        0,
        dst,
        svc.key.port(),
    )
    .with_tag(crate::conn::key_tag_template())
}

/// The reply key of a NAT or FullNAT connection: how the real server's packets look.
pub(super) fn reply_key(
    fwd: &FlowKey,
    real: &RealServer,
    laddr: Option<[u8; 16]>,
    lport: u16,
) -> FlowKey {
    let rport = if real.port == 0 {
        fwd.dport()
    } else {
        real.port
    };
    let (dst, dport) = match laddr {
        Some(l) => (l, lport),
        None => (fwd.src(), fwd.sport()),
    };
    FlowKey::flow(fwd.version(), fwd.proto(), real.addr16(), rport, dst, dport)
}

/// True if the TCP segment `s` (in frame `d`) carries data.
fn tcp_has_payload(d: &[u8], s: &IpSummary) -> bool {
    let header = d
        .get(s.l4_offset + 12)
        .map_or(xvs_wire::tcp::MIN_HEADER_LEN, |b| usize::from(b >> 4) * 4);
    s.l3_offset + s.l3_len > s.l4_offset + header
}

/// True if a plain packet leaves a connection in this state as it is (what the flow cache
/// may hold): TCP established, UDP after its second packet.
fn steady(info: &FwdInfo) -> bool {
    info.old_state == info.new_state
        && match info.proto {
            // Unverified, its next data segment must reach the table (which verifies it).
            ip_proto::TCP => info.new_state == state::tcp::ESTABLISHED && info.verified,
            ip_proto::UDP => info.new_state == state::udp::SEEN,
            _ => false,
        }
}

impl Lane {
    /// A TCP, UDP or SCTP packet (not a fragment): its connection from the worker's flow
    /// cache, else from the shared table, else a new one. `chunk` is the first SCTP chunk type.
    #[inline(always)]
    pub(super) fn flow(
        &mut self,
        cx: &Ctx<'_>,
        f: &mut super::Frame<'_>,
        s: &IpSummary,
        chunk: Option<u8>,
    ) -> Verdict {
        let key = s.key;
        let hash = cx.table.hash(&key);
        if s.tcp_flags & STATE_FLAGS == 0 {
            if let Some(c) = self.cache.get(&key, self.cache.hash(&key), cx.now).copied() {
                if let Some(v) = self.send_cached(cx, f, s, &c) {
                    return v;
                }
            }
        }
        self.flow_shared(cx, f, s, chunk, key, hash)
    }

    /// The flow's shared entry: state advanced, expiry refreshed; the flow cache filled when
    /// the connection is steady.
    pub(super) fn flow_shared(
        &mut self,
        cx: &Ctx<'_>,
        f: &mut super::Frame<'_>,
        s: &IpSummary,
        chunk: Option<u8>,
        key: FlowKey,
        hash: u64,
    ) -> Verdict {
        let (now, timeouts) = (cx.now, &cx.snap.timeouts);
        // A client segment carrying data verifies its connection (a SYN does not: anyone can
        // send one).
        let data = key.proto() == ip_proto::TCP
            && s.tcp_flags & flags::SYN == 0
            && tcp_has_payload(f.data(), s);
        let (lk, vacancy) = cx
            .table
            .lookup_vacancy(&key, hash, now, |e, _| match e.kind {
                EntryKind::Forward => {
                    let dir = if e.method().is_two_way() {
                        Direction::Input
                    } else {
                        Direction::InputOnly
                    };
                    let old = e.state;
                    e.state = advance(e.key.proto(), dir, old, s.tcp_flags, chunk);
                    if data {
                        e.flags |= Entry::VERIFIED;
                    }
                    // Forwarded here now: this director sends it from now on.
                    e.flags &= !Entry::FROM_PEER;
                    e.expires = now.saturating_add(e.timeout(timeouts));
                    Hit::Fwd(FwdInfo::of(e, old))
                }
                EntryKind::Reply => {
                    e.expires =
                        now.saturating_add(timeouts.of(e.key.proto(), state::tcp::ESTABLISHED));
                    if s.tcp_flags & flags::SYN == 0 {
                        e.state = Entry::REPLIED;
                    }
                    Hit::Reply {
                        fwd: e.fwd_ref(),
                        serial: e.serial,
                    }
                }
                _ => Hit::Other,
            });
        match lk {
            Lookup::Hit(Hit::Fwd(info)) => {
                self.state_moved(cx, &info);
                match cx.snap.services.real(info.real) {
                    Some(real)
                        if !((real.removed || !real.up) && cx.snap.options.expire_nodest_conn) =>
                    {
                        if steady(&info) && s.tcp_flags & STATE_FLAGS == 0 {
                            self.cache
                                .put(self.cache.hash(&key), Cached::of(key, now, &info));
                        } else {
                            // Moving (FIN, RST, …): later packets must see the new state.
                            self.cache.forget(&key, self.cache.hash(&key));
                        }
                        self.send_to_real(cx, f, s, &info, real)
                    }
                    _ => {
                        self.cache.forget(&key, self.cache.hash(&key));
                        if let Some(e) = cx
                            .table
                            .remove(&key, hash, |e| e.kind == EntryKind::Forward)
                        {
                            self.removed(cx, &e);
                        }
                        self.new_flow(cx, f, s, chunk, key, hash, Vacancy::default())
                    }
                }
            }
            Lookup::Hit(Hit::Reply { fwd, serial }) => {
                self.reply(cx, f, s, chunk, fwd, serial, &key)
            }
            Lookup::Hit(Hit::Other) => Verdict::Pass,
            Lookup::Expired(e) => {
                bump(&cx.c.conns_expired, 1);
                self.removed(cx, &e);
                self.new_flow(cx, f, s, chunk, key, hash, Vacancy::default())
            }
            Lookup::Miss => self.new_flow(cx, f, s, chunk, key, hash, vacancy),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn reply(
        &mut self,
        cx: &Ctx<'_>,
        f: &mut super::Frame<'_>,
        s: &IpSummary,
        chunk: Option<u8>,
        fwd: SlotRef,
        serial: u32,
        rkey: &FlowKey,
    ) -> Verdict {
        let (now, timeouts) = (cx.now, &cx.snap.timeouts);
        let lk = cx.table.with_slot(fwd, serial, now, |e| {
            let old = e.state;
            e.state = advance(e.key.proto(), Direction::Output, old, s.tcp_flags, chunk);
            // The real server answered through xvs: the connection is real (and forwarded
            // here).
            e.flags = (e.flags | Entry::VERIFIED) & !Entry::FROM_PEER;
            e.expires = now.saturating_add(e.timeout(timeouts));
            (FwdInfo::of(e, old), e.key, e.worker)
        });
        match lk {
            Lookup::Hit((info, fwd_key, creator)) => {
                if usize::from(creator) != self.slot {
                    bump(&cx.c.cross_worker_replies, 1);
                }
                self.state_moved(cx, &info);
                self.send_to_client(cx, f, s, &info, &fwd_key)
            }
            Lookup::Expired(e) => {
                bump(&cx.c.conns_expired, 1);
                self.removed(cx, &e);
                Verdict::Pass
            }
            Lookup::Miss => {
                // The forward entry is gone: this reply entry is stale.
                cx.table.remove(rkey, cx.table.hash(rkey), |e| {
                    e.kind == EntryKind::Reply && e.serial == serial
                });
                Verdict::Pass
            }
        }
    }

    /// Moves the active/inactive gauges when a connection changes class.
    fn state_moved(&self, cx: &Ctx<'_>, info: &FwdInfo) {
        if info.old_state == info.new_state {
            return;
        }
        let (was, is) = (
            state::is_active(info.proto, info.old_state),
            state::is_active(info.proto, info.new_state),
        );
        if was != is {
            if let Some(c) = cx.c.real(info.real) {
                if is {
                    bump(&c.active, 1);
                    decrement(&c.inactive);
                } else {
                    decrement(&c.active);
                    bump(&c.inactive, 1);
                }
            }
        }
    }

    /// Counts an entry an insert displaced (expired, or evicted alive) and lets go of it.
    pub(super) fn displaced(&self, cx: &Ctx<'_>, d: Option<Displaced>) {
        if let Some(d) = d {
            let counter = if d.expired {
                &cx.c.conns_expired
            } else {
                &cx.c.conns_evicted
            };
            bump(counter, 1);
            self.removed(cx, &d.entry);
        }
    }

    /// Bookkeeping for an entry that left the table (expired, evicted or removed): gauges, and
    /// the reply entry of a NAT/FullNAT connection.
    pub(crate) fn removed(&self, cx: &Ctx<'_>, e: &Entry) {
        match e.kind {
            EntryKind::Forward => {
                if let Some(c) = cx.c.real(e.real()) {
                    if state::is_active(e.key.proto(), e.state) {
                        decrement(&c.active);
                    } else {
                        decrement(&c.inactive);
                    }
                }
                if !e.method().is_two_way() {
                    return;
                }
                let Some(real) = cx.snap.services.real(e.real()) else {
                    return;
                };
                let laddr = match e.method() {
                    Method::FullNat => {
                        let Some(svc) = cx.snap.services.service(e.svc()) else {
                            return;
                        };
                        let Some(a) = svc.options.local_addrs.get(usize::from(e.laddr)) else {
                            return;
                        };
                        Some(addr16(a))
                    }
                    _ => None,
                };
                let rk = reply_key(&e.key, real, laddr, e.lport);
                let serial = e.serial;
                cx.table.remove(&rk, cx.table.hash(&rk), |r| {
                    r.kind == EntryKind::Reply && r.serial == serial
                });
            }
            EntryKind::Template => {
                if let Some(c) = cx.c.real(e.real()) {
                    decrement(&c.persist);
                }
            }
            EntryKind::Reply | EntryKind::Empty => {}
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn new_flow(
        &mut self,
        cx: &Ctx<'_>,
        f: &mut super::Frame<'_>,
        s: &IpSummary,
        chunk: Option<u8>,
        key: FlowKey,
        hash: u64,
        vacancy: Vacancy,
    ) -> Verdict {
        let (svc, real) = match self.admit(cx, s, chunk, Some(f.data()), false) {
            Admit::Picked { svc, real, .. } => (svc, real),
            Admit::NoService => return Verdict::Pass,
            // A segment of a connection this director has no entry for (opened before a
            // restart, or at another director before a route change, not synced yet). IPVS
            // hands it to the host, which resets it; a frame AF_XDP took cannot go back, and
            // a reset would end a connection that its next retransmission may find here once
            // synced: dropped and counted.
            Admit::NotOpening(_) => return Verdict::Drop(DropReason::NoConnection),
            Admit::BadChecksum => return Verdict::Drop(DropReason::BadChecksum),
            Admit::Martian(_) => return Verdict::Drop(DropReason::Martian),
            Admit::NoReal(_) => {
                cx.c.drop(DropReason::NoRealServer);
                return self.unreachable(cx, f, s);
            }
        };
        // A connection that could not leave is not made.
        if matches!(cx.snap.real_hop(real.id), crate::net::Resolve::NoRoute) {
            return Verdict::Drop(DropReason::NoRoute);
        }
        if svc.options.one_packet && s.key.proto() == ip_proto::UDP {
            self.count_new(cx, real.id, false);
            let info = FwdInfo {
                real: real.id,
                svc: svc.id,
                laddr: 0,
                lport: 0,
                method: real.options.method,
                proto: s.key.proto(),
                old_state: 0,
                new_state: 0,
                verified: false,
            };
            return self.send_to_real(cx, f, s, &info, real);
        }
        let method = real.options.method;
        let dir = if method.is_two_way() {
            Direction::Input
        } else {
            Direction::InputOnly
        };
        let st = match s.key.proto() {
            ip_proto::UDP => state::udp::NEW,
            p => advance(p, dir, 0, s.tcp_flags, chunk),
        };
        let mut e = Entry::forward(key, svc.id, real.id, method);
        e.worker = self.slot as u8;
        e.state = st;
        e.expires = cx
            .now
            .saturating_add(cx.snap.timeouts.of(s.key.proto(), st));
        let mut laddr = None;
        if method == Method::FullNat {
            let Some((li, la, lport)) = self.local_port(cx, svc, real, &key) else {
                return Verdict::Drop(DropReason::NoLocalPort);
            };
            e.laddr = li;
            e.lport = lport;
            laddr = Some(la);
        }
        let (slot, serial) = match cx.table.insert_at(vacancy, hash, e, cx.now) {
            Insert::Inserted {
                slot,
                serial,
                displaced,
            } => {
                self.displaced(cx, displaced);
                (slot, serial)
            }
            Insert::Exists => return Verdict::Drop(DropReason::Conflict),
            Insert::Full => return Verdict::Drop(DropReason::TableFull),
        };
        if method.is_two_way() {
            let rk = reply_key(&key, real, laddr, e.lport);
            let rh = cx.table.hash(&rk);
            self.take_over_reply_key(cx, &rk, rh);
            let mut r = Entry::reply(rk, slot, serial);
            r.expires = e.expires;
            let reason = match cx.table.insert(rh, r, cx.now) {
                Insert::Inserted { displaced, .. } => {
                    self.displaced(cx, displaced);
                    None
                }
                Insert::Exists => Some(DropReason::Conflict),
                Insert::Full => Some(DropReason::TableFull),
            };
            if let Some(r) = reason {
                cx.table.remove(&key, hash, |x| x.serial == serial);
                return Verdict::Drop(r);
            }
        }
        self.count_new(cx, real.id, state::is_active(s.key.proto(), st));
        let info = FwdInfo::of(&e, st);
        self.send_to_real(cx, f, s, &info, real)
    }

    /// Whether and where a packet without a connection opens one: its service, the opening
    /// check (TCP SYN without ACK/RST, SCTP INIT, any UDP), the IPv4 header checksum (when
    /// `frame` is given), then the persistence template or the scheduler. The one decision
    /// both [`Lane::new_flow`] and `trace` take; `dry` (the trace) creates and refreshes
    /// nothing.
    pub(super) fn admit<'s>(
        &mut self,
        cx: &Ctx<'s>,
        s: &IpSummary,
        chunk: Option<u8>,
        frame: Option<&[u8]>,
        dry: bool,
    ) -> Admit<'s> {
        let svcs = &cx.snap.services;
        let family = if s.is_v6() {
            crate::service::Family::V6
        } else {
            crate::service::Family::V4
        };
        let Some(svc) = self
            .services
            .lookup(svcs, family, s.key.proto(), &s.key.dst(), s.key.dport())
            .and_then(|id| svcs.service(id))
        else {
            return Admit::NoService;
        };
        // Only a connection's opening packet may create it, except that with `mh` a TCP
        // segment of a connection met mid-stream does too: every director of a scale-out
        // group picks the same server for it, so a flow that a route change brought here
        // before its connection synced still reaches its server (IPVS's sloppy_tcp, for the
        // one scheduler where it is safe).
        let opens = match s.key.proto() {
            ip_proto::TCP => match s.tcp_flags & (flags::SYN | flags::ACK | flags::RST) {
                flags::SYN => true,
                flags::ACK => svc.options.scheduler == "mh",
                _ => false,
            },
            ip_proto::SCTP => chunk == Some(xvs_wire::sctp::chunk::INIT),
            _ => true,
        };
        if !opens {
            return Admit::NotOpening(svc);
        }
        if martian_source(&s.key.src(), &s.key.dst(), s.is_v6()) {
            return Admit::Martian(svc);
        }
        if let Some(d) = frame {
            if !s.is_v6()
                && cx.snap.options.verify_ipv4_checksum
                && !Ipv4Packet::new_unchecked(&d[s.l3_offset..]).verify_checksum()
            {
                return Admit::BadChecksum;
            }
        }
        let picked = match svc.options.persistence {
            Some(p) => self.persistent_pick(cx, svc, s, p, dry),
            None => self.pick(cx, svc, s).map(|r| (r, None)),
        };
        match picked.and_then(|(r, t)| svcs.real(r).map(|real| (real, t))) {
            Some((real, template)) => Admit::Picked {
                svc,
                real,
                template,
            },
            None => Admit::NoReal(svc),
        }
    }

    /// A client that reuses a source port towards the same real server port through another
    /// service (or after a restart) makes a NAT reply key that an older connection still holds.
    /// If that connection is closing (TIME_WAIT, CLOSE, FIN exchange) or gone, the new one takes
    /// the key over: the old entry is removed. A live connection keeps it (the new one is then
    /// dropped as `Conflict`).
    fn take_over_reply_key(&self, cx: &Ctx<'_>, rk: &FlowKey, rh: u64) {
        let Lookup::Hit((fwd, serial)) = cx
            .table
            .lookup(rk, rh, cx.now, |e, _| (e.fwd_ref(), e.serial))
        else {
            return;
        };
        let closing = match cx
            .table
            .with_slot(fwd, serial, cx.now, |e| (e.key, e.state))
        {
            Lookup::Hit((k, st)) => {
                let closing = k.proto() == ip_proto::TCP
                    && matches!(
                        st,
                        state::tcp::TIME_WAIT
                            | state::tcp::CLOSE
                            | state::tcp::FIN_WAIT
                            | state::tcp::CLOSE_WAIT
                            | state::tcp::LAST_ACK
                    );
                if closing {
                    if let Some(old) = cx
                        .table
                        .remove(&k, cx.table.hash(&k), |e| e.serial == serial)
                    {
                        self.removed(cx, &old);
                    }
                }
                closing
            }
            Lookup::Expired(old) => {
                self.removed(cx, &old);
                true
            }
            Lookup::Miss => true,
        };
        if closing {
            cx.table
                .remove(rk, rh, |e| e.kind == EntryKind::Reply && e.serial == serial);
        }
    }

    fn count_new(&self, cx: &Ctx<'_>, real: RealId, active: bool) {
        bump(&cx.c.conns_created, 1);
        if let Some(c) = cx.c.real(real) {
            bump(&c.conns, 1);
            bump(if active { &c.active } else { &c.inactive }, 1);
        }
    }

    /// Asks the service's scheduler for a real server.
    pub(super) fn pick(&mut self, cx: &Ctx<'_>, svc: &Service, s: &IpSummary) -> Option<RealId> {
        let slot = self.scheds.get_mut(usize::from(svc.id))?.as_mut()?;
        let dests = Dests::new(
            &cx.snap.services,
            &svc.reals,
            &slot.info,
            cx.stats,
            &self.overload,
        );
        let req = Request {
            src: &s.key.src(),
            dst: &s.key.dst(),
            sport: s.key.sport(),
            dport: s.key.dport(),
            v6: s.is_v6(),
            now: cx.now,
        };
        match slot.sched.schedule(&dests, &req) {
            Some(i) => Some(svc.reals[i]),
            // No real server available: the sorry server, if the service has one.
            None => svc
                .sorry
                .filter(|&r| cx.snap.services.real(r).is_some_and(|r| r.up)),
        }
    }

    /// Persistence: the client network's template names the real server while it lives
    /// (refreshed by every new connection); otherwise schedule and create the template.
    /// The real server of the client's persistence template, with the seconds it had left,
    /// or a scheduled one (and, unless `dry`, a new template).
    fn persistent_pick(
        &mut self,
        cx: &Ctx<'_>,
        svc: &Service,
        s: &IpSummary,
        p: Persistence,
        dry: bool,
    ) -> Option<(RealId, Option<u32>)> {
        let tkey = template_key(svc, &s.key, p);
        let th = cx.table.hash(&tkey);
        let expires = cx.now.saturating_add(p.timeout);
        let found = cx.table.lookup(&tkey, th, cx.now, |e, _| {
            let left = e.expires.saturating_sub(cx.now);
            if !dry {
                e.expires = expires;
                e.flags &= !Entry::FROM_PEER;
            }
            (e.real(), left)
        });
        match found {
            Lookup::Hit((r, left))
                if svc.reals.contains(&r) && cx.snap.services.real(r).is_some_and(|x| x.up) =>
            {
                return Some((r, Some(left)));
            }
            Lookup::Hit(_) if dry => {}
            Lookup::Hit(_) => {
                if let Some(e) = cx
                    .table
                    .remove(&tkey, th, |e| e.kind == EntryKind::Template)
                {
                    self.removed(cx, &e);
                }
            }
            Lookup::Expired(e) => self.removed(cx, &e),
            Lookup::Miss => {}
        }
        let real = self.pick(cx, svc, s)?;
        if dry {
            return Some((real, None));
        }
        let mut t = Entry::template(tkey, svc.id, real);
        t.expires = expires;
        if let Insert::Inserted { displaced, .. } = cx.table.insert(th, t, cx.now) {
            self.displaced(cx, displaced);
            if let Some(c) = cx.c.real(real) {
                bump(&c.persist, 1);
            }
        }
        Some((real, None))
    }

    /// Picks a FullNAT local address and port whose reply key is free: ports are handed out
    /// in sequence per worker (each worker starts at a different point of the range), local
    /// addresses in turn.
    fn local_port(
        &mut self,
        cx: &Ctx<'_>,
        svc: &Service,
        real: &RealServer,
        key: &FlowKey,
    ) -> Option<(u16, [u8; 16], u16)> {
        let pool = &svc.options.local_addrs;
        if pool.is_empty() {
            return None;
        }
        for _ in 0..64 {
            let (li, lport) = self.next_local_port(pool.len());
            let la = addr16(&pool[li]);
            let rk = reply_key(key, real, Some(la), lport);
            if matches!(
                cx.table.lookup(&rk, cx.table.hash(&rk), cx.now, |_, _| ()),
                Lookup::Miss
            ) {
                return Some((li as u16, la, lport));
            }
        }
        None
    }
}

/// True if `src` (key form) cannot be a client's address opening a connection to `dst`: the
/// unspecified address, "this network", loopback, multicast, broadcast and the reserved
/// 240/4, IPv6 multicast, or the destination itself.
pub(super) fn martian_source(src: &[u8; 16], dst: &[u8; 16], v6: bool) -> bool {
    if src == dst {
        return true;
    }
    if v6 {
        let loopback = src[..15].iter().all(|&b| b == 0) && src[15] == 1;
        let unspecified = src.iter().all(|&b| b == 0);
        return unspecified || loopback || src[0] == 0xff;
    }
    let first = src[12];
    first == 0 || first == 127 || first >= 224
}

#[cfg(test)]
mod martian_tests {
    use super::martian_source;
    use crate::service::addr16;

    fn m(src: &str, dst: &str) -> bool {
        let (s, d): (std::net::IpAddr, std::net::IpAddr) =
            (src.parse().unwrap(), dst.parse().unwrap());
        martian_source(&addr16(&s), &addr16(&d), s.is_ipv6())
    }

    #[test]
    fn sources_no_client_can_have() {
        for src in [
            "0.0.0.0",
            "0.1.2.3",
            "127.0.0.1",
            "224.0.0.1",
            "239.1.1.1",
            "240.0.0.1",
            "255.255.255.255",
            "198.18.0.10",
        ] {
            assert!(m(src, "198.18.0.10"), "{src}");
        }
        for src in ["::", "::1", "ff02::1", "2001:db8::10"] {
            assert!(m(src, "2001:db8::10"), "{src}");
        }
        for src in ["203.0.113.7", "198.18.0.11", "10.0.0.1", "223.255.255.254"] {
            assert!(!m(src, "198.18.0.10"), "{src}");
        }
        assert!(!m("2001:db8:ff::7", "2001:db8::10"));
    }
}
