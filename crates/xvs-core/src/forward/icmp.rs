//! ICMP: echo requests to virtual IPs are answered; ICMP errors that quote a tracked flow are
//! forwarded to the right real server (translated for NAT/FullNAT) or, for errors from a NAT
//! real server about a client's packet, back to the client; and the errors xvs originates
//! (fragmentation needed / packet too big, time exceeded, port unreachable) are built in place.

use super::flow::FwdInfo;
use super::rewrite::{Pkt, decrement_ttl, rewrite, set_macs, src_mac};
use super::xmit::nat_ends;
use super::{Ctx, Frame, Lane, Verdict};
use crate::conn::{EntryKind, FlowKey, Lookup};
use crate::drop_reason::DropReason;
use crate::service::Method;
use crate::stats::bump;
use xvs_wire::emit::{self, IcmpError};
use xvs_wire::ipv4::Ipv4Packet;
use xvs_wire::ipv6::Ipv6Packet;
use xvs_wire::summary::{IpSummary, v4_mapped, v4_of};
use xvs_wire::{checksum, icmpv4, icmpv6, ip_proto};

enum Related {
    Fwd(FwdInfo, FlowKey),
    Reply(crate::conn::SlotRef, u32),
    Other,
}

impl Lane {
    pub(super) fn icmp(&mut self, cx: &Ctx<'_>, f: &mut Frame<'_>, s: &IpSummary) -> Verdict {
        let l4 = &f.data()[s.l4_offset..];
        let t = if s.is_v6() {
            icmpv6::Icmpv6Packet::new_unchecked(l4).msg_type()
        } else {
            icmpv4::Icmpv4Packet::new_unchecked(l4).msg_type()
        };
        let (echo, is_err) = if s.is_v6() {
            (icmpv6::kind::ECHO_REQUEST, icmpv6::is_error(t))
        } else {
            (icmpv4::kind::ECHO_REQUEST, icmpv4::is_error(t))
        };
        if t == echo && cx.snap.options.answer_echo && cx.snap.services.is_vip(&s.key.dst()) {
            return self.echo_reply(cx, f, s);
        }
        if is_err {
            return self.related_error(cx, f, s);
        }
        Verdict::Pass
    }

    fn echo_reply(&mut self, cx: &Ctx<'_>, f: &mut Frame<'_>, s: &IpSummary) -> Verdict {
        let Some(port) = cx.snap.net.ports.get(usize::from(f.ingress())) else {
            return Verdict::Drop(DropReason::NoRoute);
        };
        let (l3, l4, end) = (s.l3_offset, s.l4_offset, s.l3_offset + s.l3_len);
        let d = f.data_mut();
        let ok = if s.is_v6() {
            checksum::l4_v6(s.key.src(), s.key.dst(), ip_proto::ICMPV6, &d[l4..end]) == 0
        } else {
            checksum::checksum(&d[l4..end]) == 0
        };
        if !ok {
            return Verdict::Drop(DropReason::BadChecksum);
        }
        let client_mac = src_mac(d);
        set_macs(d, client_mac, port.mac);
        // Swapping source and destination leaves every checksum unchanged.
        let reply = if s.is_v6() {
            let mut ip = Ipv6Packet::new_unchecked(&mut d[l3..]);
            ip.set_src(s.key.dst());
            ip.set_dst(s.key.src());
            ip.set_hop_limit(emit::ORIGIN_TTL);
            icmpv6::kind::ECHO_REPLY
        } else {
            let mut ip = Ipv4Packet::new_unchecked(&mut d[l3..]);
            ip.set_src(v4_of(&s.key.dst()));
            ip.set_dst(v4_of(&s.key.src()));
            let old = u16::from_be_bytes([s.ttl, ip_proto::ICMP]);
            let c = checksum::update16(
                ip.checksum(),
                old,
                u16::from_be_bytes([emit::ORIGIN_TTL, ip_proto::ICMP]),
            );
            ip.set_ttl(emit::ORIGIN_TTL);
            ip.set_checksum(c);
            icmpv4::kind::ECHO_REPLY
        };
        // Type and code are one 16-bit word of the checksum.
        let fix = |old: u16, t: u8, code: u8| {
            checksum::update16(
                old,
                u16::from_be_bytes([t, code]),
                u16::from_be_bytes([reply, code]),
            )
        };
        if s.is_v6() {
            let mut icmp = icmpv6::Icmpv6Packet::new_unchecked(&mut d[l4..end]);
            let c = fix(icmp.checksum(), icmp.msg_type(), icmp.msg_code());
            icmp.set_msg_type(reply);
            icmp.set_checksum(c);
        } else {
            let mut icmp = icmpv4::Icmpv4Packet::new_unchecked(&mut d[l4..end]);
            let c = fix(icmp.checksum(), icmp.msg_type(), icmp.msg_code());
            icmp.set_msg_type(reply);
            icmp.set_checksum(c);
        }
        bump(&cx.c.icmp_sent, 1);
        Verdict::Tx { port: f.ingress() }
    }

    /// An ICMP error: find the flow it quotes and forward it accordingly.
    fn related_error(&mut self, cx: &Ctx<'_>, f: &mut Frame<'_>, s: &IpSummary) -> Verdict {
        let d = f.data();
        let end = s.l3_offset + s.l3_len;
        let q3 = s.l4_offset + 8;
        if q3 > end {
            return Verdict::Drop(DropReason::BadIcmp);
        }
        let quoted = &d[q3..end];
        let (qsrc, qdst, qproto, q4) = if s.is_v6() {
            let Ok(ip) = Ipv6Packet::new_quoted(quoted) else {
                return Verdict::Pass;
            };
            let Ok(ul) = ip.upper_layer() else {
                return Verdict::Pass;
            };
            (ip.src(), ip.dst(), ul.protocol, q3 + ul.offset)
        } else {
            let Ok(ip) = Ipv4Packet::new_quoted(quoted) else {
                return Verdict::Pass;
            };
            (
                v4_mapped(ip.src()),
                v4_mapped(ip.dst()),
                ip.protocol(),
                q3 + ip.header_len(),
            )
        };
        if !matches!(qproto, ip_proto::TCP | ip_proto::UDP | ip_proto::SCTP) || q4 + 4 > end {
            return Verdict::Pass;
        }
        let qsport = u16::from_be_bytes([d[q4], d[q4 + 1]]);
        let qdport = u16::from_be_bytes([d[q4 + 2], d[q4 + 3]]);
        // The quoted packet went the other way: its reverse is the key of the flow.
        let key = FlowKey::flow(s.key.version(), qproto, qdst, qdport, qsrc, qsport);
        let hash = cx.table.hash(&key);
        let lk = cx.table.lookup(&key, hash, cx.now, |e, _| match e.kind {
            EntryKind::Forward => Related::Fwd(FwdInfo::of(e, e.state), e.key),
            EntryKind::Reply => Related::Reply(e.fwd_ref(), e.serial),
            _ => Related::Other,
        });
        let qp = Pkt {
            l3: q3,
            l4: q4,
            end,
            v6: s.is_v6(),
            proto: qproto,
            whole: false,
        };
        match lk {
            Lookup::Hit(Related::Fwd(info, k)) => self.error_to_real(cx, f, s, qp, &info, &k),
            Lookup::Hit(Related::Reply(slot, serial)) => {
                match cx
                    .table
                    .with_slot(slot, serial, cx.now, |e| (FwdInfo::of(e, e.state), e.key))
                {
                    Lookup::Hit((info, k)) => self.error_to_client(cx, f, s, qp, &info, &k),
                    _ => Verdict::Pass,
                }
            }
            Lookup::Expired(e) => {
                bump(&cx.c.conns_expired, 1);
                self.removed(cx, &e);
                Verdict::Pass
            }
            _ => Verdict::Pass,
        }
    }

    /// An error about a packet the service sent to a client (quoted: VIP → client): it belongs
    /// to the real server that sent it.
    fn error_to_real(
        &mut self,
        cx: &Ctx<'_>,
        f: &mut Frame<'_>,
        s: &IpSummary,
        qp: Pkt,
        info: &FwdInfo,
        key: &FlowKey,
    ) -> Verdict {
        let Some(real) = cx.snap.services.real(info.real) else {
            return Verdict::Drop(DropReason::NoRealServer);
        };
        let hop = cx.snap.real_hop(info.real);
        match info.method {
            Method::Dr => {
                let Some(nh) = self.hop_or_drop(hop) else {
                    return Verdict::Drop(self.hop_reason(hop));
                };
                Self::l2_out(f, nh)
            }
            Method::Tun => self.tunnel(cx, f, s, hop, real.addr16(), real.options.tunnel),
            Method::Nat | Method::FullNat => {
                let nh = match self.routed_hop(hop, s) {
                    Ok(nh) => nh,
                    Err(v) => return v,
                };
                // The quotation is of a packet the real server sent: its source becomes the
                // real server's end again, its destination the local end (FullNAT).
                let (rip, local) = match nat_ends(cx, info, real, key.dport()) {
                    Ok(ends) => ends,
                    Err(v) => return v,
                };
                let outer = Pkt::of(s);
                let d = f.data_mut();
                rewrite(d, qp, Some(rip), local);
                rewrite(d, outer, None, Some((rip.0, 0)));
                finish_icmp(d, outer);
                decrement_ttl(d, outer);
                Self::l2_out(f, nh)
            }
        }
    }

    /// An error from a NAT/FullNAT real server about a client's packet (quoted: client or
    /// local address → RIP): it goes back to the client as coming from the service.
    fn error_to_client(
        &mut self,
        cx: &Ctx<'_>,
        f: &mut Frame<'_>,
        s: &IpSummary,
        qp: Pkt,
        info: &FwdInfo,
        key: &FlowKey,
    ) -> Verdict {
        let nh = match self.routed_hop(cx.snap.net.resolve(&key.src()), s) {
            Ok(nh) => nh,
            Err(v) => return v,
        };
        let vip = (key.dst(), key.dport());
        let client = (key.src(), key.sport());
        let outer = Pkt::of(s);
        let d = f.data_mut();
        let inner_src = (info.method == Method::FullNat).then_some(client);
        rewrite(d, qp, inner_src, Some(vip));
        rewrite(d, outer, Some((vip.0, 0)), Some((client.0, 0)));
        finish_icmp(d, outer);
        decrement_ttl(d, outer);
        Self::l2_out(f, nh)
    }

    /// The next hop of an ICMP error that is routed on (NAT, FullNAT): dropped if it is not
    /// resolved or the error's TTL runs out here.
    fn routed_hop(
        &mut self,
        hop: crate::net::Resolve,
        s: &IpSummary,
    ) -> Result<crate::net::NextHop, Verdict> {
        let nh = self
            .hop_or_drop(hop)
            .ok_or_else(|| Verdict::Drop(self.hop_reason(hop)))?;
        if s.ttl <= 1 {
            return Err(Verdict::Drop(DropReason::TtlExceeded));
        }
        Ok(nh)
    }

    fn hop_or_drop(&mut self, hop: crate::net::Resolve) -> Option<crate::net::NextHop> {
        match hop {
            crate::net::Resolve::Hop(nh) => Some(nh),
            crate::net::Resolve::Unresolved { port, ip } => {
                self.note_unresolved(port, ip);
                None
            }
            crate::net::Resolve::NoRoute => None,
        }
    }

    fn hop_reason(&self, hop: crate::net::Resolve) -> DropReason {
        match hop {
            crate::net::Resolve::Unresolved { .. } => DropReason::UnknownNeighbour,
            _ => DropReason::NoRoute,
        }
    }

    /// Answers "port unreachable" for a packet no real server can take (as IPVS does).
    pub(super) fn unreachable(
        &mut self,
        cx: &Ctx<'_>,
        f: &mut Frame<'_>,
        s: &IpSummary,
    ) -> Verdict {
        let e = if s.is_v6() {
            IcmpError {
                msg_type: icmpv6::kind::DEST_UNREACH,
                code: icmpv6::code::PORT_UNREACH,
                rest: [0; 4],
            }
        } else {
            IcmpError {
                msg_type: icmpv4::kind::DEST_UNREACH,
                code: icmpv4::code::PORT_UNREACH,
                rest: [0; 4],
            }
        };
        self.icmp_error_back(cx, f, s, e)
    }

    /// Turns the frame into an ICMP error back to its sender, quoting its IP packet. The
    /// source is the original destination if it is a virtual IP, else the ingress port's
    /// address.
    pub(super) fn icmp_error_back(
        &mut self,
        cx: &Ctx<'_>,
        f: &mut Frame<'_>,
        s: &IpSummary,
        e: IcmpError,
    ) -> Verdict {
        let Some(port) = cx.snap.net.ports.get(usize::from(f.ingress())) else {
            return Verdict::Drop(DropReason::NoRoute);
        };
        let src = if cx.snap.services.is_vip(&s.key.dst()) {
            s.key.dst()
        } else {
            match port.addr_of(s.is_v6()) {
                Some(a) => a,
                None => return Verdict::Drop(DropReason::NoSourceAddress),
            }
        };
        let l3 = s.l3_offset;
        let (extra, max) = if s.is_v6() {
            (emit::ICMPV6_QUOTE_OFFSET, emit::ICMPV6_ERROR_MAX)
        } else {
            (emit::ICMPV4_QUOTE_OFFSET, emit::ICMPV4_ERROR_MAX)
        };
        let quote = s.l3_len.min(max - extra);
        let port_mac = port.mac;
        if !f.push_front(extra) {
            return Verdict::Drop(DropReason::NoHeadroom);
        }
        let d = f.data_mut();
        d.copy_within(extra..extra + l3, 0);
        let client_mac = src_mac(d);
        set_macs(d, client_mac, port_mac);
        let n = if s.is_v6() {
            emit::icmpv6_error(&mut d[l3..], e, src, s.key.src(), quote)
        } else {
            emit::icmpv4_error(&mut d[l3..], e, v4_of(&src), v4_of(&s.key.src()), quote)
        };
        f.truncate(l3 + n);
        bump(&cx.c.icmp_sent, 1);
        Verdict::Tx { port: f.ingress() }
    }
}

/// Recomputes the ICMP checksum of a translated error (its quotation changed).
fn finish_icmp(d: &mut [u8], outer: Pkt) {
    let (l4, end) = (outer.l4, outer.end);
    if outer.v6 {
        let ip = Ipv6Packet::new_unchecked(&d[outer.l3..]);
        let (src, dst) = (ip.src(), ip.dst());
        icmpv6::Icmpv6Packet::new_unchecked(&mut d[l4..end]).fill_checksum(src, dst);
    } else {
        icmpv4::Icmpv4Packet::new_unchecked(&mut d[l4..end]).fill_checksum();
    }
}
