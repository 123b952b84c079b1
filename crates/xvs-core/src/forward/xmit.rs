//! Transmission by forwarding method, and the egress checks every method shares: next hop
//! known, packet fits the egress MTU, TTL left on routed paths.
//!
//! - DR: destination MAC ← real server's MAC, source MAC ← egress port's MAC; nothing else.
//! - NAT: request DNAT to RIP:rport, reply SNAT back to VIP:vport; TTL decremented (routed).
//! - TUN: an outer IPv4 (or IPv6) header from the egress port's address to the RIP; TTL, DF,
//!   TOS and ID (or hop limit, traffic class, flow label) copied from the inner packet.
//! - FullNAT: source → local address:port from the service's pool, destination → RIP:rport;
//!   replies mapped back to VIP:vport → CIP:cport.

use super::flow::FwdInfo;
use super::rewrite::{Pkt, decrement_ttl, rewrite};
use super::{Ctx, Frame, Lane, Verdict};
use crate::conn::FlowKey;
use crate::drop_reason::DropReason;
use crate::net::{NextHop, Resolve};
use crate::service::{Method, RealServer, Tunnel, TunnelCsum, TunnelKind, addr16};
use crate::stats::bump;
use xvs_wire::emit::IcmpError;
use xvs_wire::encap;
use xvs_wire::ip_proto;
use xvs_wire::ipv4::Ipv4Header;
use xvs_wire::ipv6::Ipv6Header;
use xvs_wire::summary::{IpSummary, v4_of};
use xvs_wire::{icmpv4, icmpv6};

/// What the egress checks concluded.
enum Egress {
    Go(NextHop),
    Stop(Verdict),
}

/// One end of a flow: an address in key form and a port.
pub(super) type End = ([u8; 16], u16);

/// The two ends a NAT or FullNAT packet to the real server is rewritten to: the real server's
/// address and port (the virtual port `vport` where it has none), and for FullNAT the local
/// address and port of the connection. `Err` if the service no longer has that local address.
pub(super) fn nat_ends(
    cx: &Ctx<'_>,
    info: &FwdInfo,
    real: &RealServer,
    vport: u16,
) -> Result<(End, Option<End>), Verdict> {
    let rport = if real.port == 0 { vport } else { real.port };
    let local = if info.method == Method::FullNat {
        let la = cx
            .snap
            .services
            .service(info.svc)
            .and_then(|svc| svc.options.local_addrs.get(usize::from(info.laddr)))
            .ok_or(Verdict::Drop(DropReason::NoLocalPort))?;
        Some((addr16(la), info.lport))
    } else {
        None
    };
    Ok(((real.addr16(), rport), local))
}

impl Lane {
    /// Checks that the next hop is known and the packet, grown by `overhead` bytes, fits.
    fn egress(
        &mut self,
        cx: &Ctx<'_>,
        f: &mut Frame<'_>,
        s: &IpSummary,
        hop: Resolve,
        overhead: usize,
    ) -> Egress {
        let nh = match hop {
            Resolve::Hop(nh) => nh,
            Resolve::Unresolved { port, ip } => {
                self.note_unresolved(port, ip);
                // Nothing was rewritten yet: the frame can be offered again as it came.
                return Egress::Stop(Verdict::Wait);
            }
            Resolve::NoRoute => return Egress::Stop(Verdict::Drop(DropReason::NoRoute)),
        };
        let mtu = usize::from(nh.mtu);
        if s.l3_len + overhead > mtu {
            if !s.dont_frag {
                return Egress::Stop(Verdict::Drop(DropReason::TooBig));
            }
            cx.c.drop(DropReason::TooBig);
            let room = mtu.saturating_sub(overhead);
            let e = if s.is_v6() {
                IcmpError {
                    msg_type: icmpv6::kind::PACKET_TOO_BIG,
                    code: 0,
                    rest: (room.max(1280) as u32).to_be_bytes(),
                }
            } else {
                let m = (room as u16).to_be_bytes();
                IcmpError {
                    msg_type: icmpv4::kind::DEST_UNREACH,
                    code: icmpv4::code::FRAG_NEEDED,
                    rest: [0, 0, m[0], m[1]],
                }
            };
            return Egress::Stop(self.icmp_error_back(cx, f, s, e));
        }
        Egress::Go(nh)
    }

    /// Checks the TTL of a routed packet; answers "time exceeded" when it ran out.
    fn ttl_left(&mut self, cx: &Ctx<'_>, f: &mut Frame<'_>, s: &IpSummary) -> Option<Verdict> {
        if s.ttl > 1 {
            return None;
        }
        cx.c.drop(DropReason::TtlExceeded);
        let e = if s.is_v6() {
            IcmpError {
                msg_type: icmpv6::kind::TIME_EXCEEDED,
                code: 0,
                rest: [0; 4],
            }
        } else {
            IcmpError {
                msg_type: icmpv4::kind::TIME_EXCEEDED,
                code: icmpv4::code::TTL_EXCEEDED,
                rest: [0; 4],
            }
        };
        Some(self.icmp_error_back(cx, f, s, e))
    }

    #[inline(always)]
    pub(super) fn l2_out(f: &mut Frame<'_>, nh: NextHop) -> Verdict {
        if let Some(m) = f.data_mut().get_mut(..12) {
            m.copy_from_slice(&nh.macs);
        }
        Verdict::Tx { port: nh.port }
    }

    /// Sends a client → virtual service packet to its real server. The DR case with a known
    /// neighbour and a fitting packet is the hot path and stays inline; everything else is out
    /// of line.
    #[inline(always)]
    pub(super) fn send_to_real(
        &mut self,
        cx: &Ctx<'_>,
        f: &mut Frame<'_>,
        s: &IpSummary,
        info: &FwdInfo,
        real: &RealServer,
    ) -> Verdict {
        if let Some(c) = cx.c.real(info.real) {
            bump(&c.in_pkts, 1);
            bump(&c.in_bytes, s.l3_len as u64);
        }
        if info.method == Method::Dr {
            if let Some(hop) = self
                .egress
                .get(info.real as usize)
                .and_then(|e| e.usable(s.l3_len))
            {
                return Self::l2_out(f, hop);
            }
        }
        let hop = cx.snap.real_hop(info.real);
        self.send_to_real_slow(cx, f, s, info, real, hop)
    }

    #[inline(never)]
    fn send_to_real_slow(
        &mut self,
        cx: &Ctx<'_>,
        f: &mut Frame<'_>,
        s: &IpSummary,
        info: &FwdInfo,
        real: &RealServer,
        hop: Resolve,
    ) -> Verdict {
        match info.method {
            Method::Dr => match self.egress(cx, f, s, hop, 0) {
                Egress::Go(nh) => Self::l2_out(f, nh),
                Egress::Stop(v) => v,
            },
            Method::Tun => self.tunnel(cx, f, s, hop, real.addr16(), real.options.tunnel),
            Method::Nat | Method::FullNat => match nat_ends(cx, info, real, s.key.dport()) {
                Ok((rip, local)) => self.routed(cx, f, s, hop, local, Some(rip)),
                Err(v) => v,
            },
        }
    }

    /// Sends a real server → client packet (NAT/FullNAT) back as coming from the service;
    /// `key` is the connection's forward key (client → VIP).
    pub(super) fn send_to_client(
        &mut self,
        cx: &Ctx<'_>,
        f: &mut Frame<'_>,
        s: &IpSummary,
        info: &FwdInfo,
        key: &FlowKey,
    ) -> Verdict {
        if let Some(c) = cx.c.real(info.real) {
            bump(&c.out_pkts, 1);
            bump(&c.out_bytes, s.l3_len as u64);
        }
        let hop = cx.snap.net.resolve(&key.src());
        let vip = Some((key.dst(), key.dport()));
        let dst = (info.method == Method::FullNat).then_some((key.src(), key.sport()));
        self.routed(cx, f, s, hop, vip, dst)
    }

    /// Routes a NAT or FullNAT packet on to `hop`: the TTL checked, the addresses and ports
    /// rewritten (`src`, `dst`: `None` keeps that end), the TTL decremented.
    fn routed(
        &mut self,
        cx: &Ctx<'_>,
        f: &mut Frame<'_>,
        s: &IpSummary,
        hop: Resolve,
        src: Option<End>,
        dst: Option<End>,
    ) -> Verdict {
        let nh = match self.egress(cx, f, s, hop, 0) {
            Egress::Go(nh) => nh,
            Egress::Stop(v) => return v,
        };
        if let Some(v) = self.ttl_left(cx, f, s) {
            return v;
        }
        let p = Pkt::of(s);
        let d = f.data_mut();
        rewrite(d, p, src, dst);
        decrement_ttl(d, p);
        Self::l2_out(f, nh)
    }

    /// Encapsulates the IP packet in an outer header to `rip` (IPIP, or IPv6-in-IPv6).
    pub(super) fn tunnel(
        &mut self,
        cx: &Ctx<'_>,
        f: &mut Frame<'_>,
        s: &IpSummary,
        hop: Resolve,
        rip: [u8; 16],
        tun: Tunnel,
    ) -> Verdict {
        let v6 = s.is_v6();
        let ip_len = if v6 {
            xvs_wire::ipv6::HEADER_LEN
        } else {
            xvs_wire::ipv4::MIN_HEADER_LEN
        };
        // The tunnel header between the outer IP header and the packet.
        let tun_len = match (tun.kind, tun.csum) {
            (TunnelKind::Ipip, _) => 0,
            (TunnelKind::Gue, _) => encap::UDP_LEN + encap::GUE_LEN,
            (TunnelKind::Gre, TunnelCsum::Csum) => encap::GRE_CSUM_LEN,
            (TunnelKind::Gre, _) => encap::GRE_LEN,
        };
        let over = ip_len + tun_len;
        let (outer_proto, inner_proto) = match (tun.kind, v6) {
            (TunnelKind::Ipip, true) => (ip_proto::IPV6, ip_proto::IPV6),
            (TunnelKind::Ipip, false) => (ip_proto::IPIP, ip_proto::IPIP),
            (TunnelKind::Gue, true) => (ip_proto::UDP, ip_proto::IPV6),
            (TunnelKind::Gue, false) => (ip_proto::UDP, ip_proto::IPIP),
            (TunnelKind::Gre, true) => (ip_proto::GRE, ip_proto::IPV6),
            (TunnelKind::Gre, false) => (ip_proto::GRE, ip_proto::IPIP),
        };
        let nh = match self.egress(cx, f, s, hop, over) {
            Egress::Go(nh) => nh,
            Egress::Stop(v) => return v,
        };
        let Some(src) = cx.snap.net.ports[usize::from(nh.port)].addr_of(v6) else {
            return Verdict::Drop(DropReason::NoSourceAddress);
        };
        let l3 = s.l3_offset;
        if !f.push_front(over) {
            return Verdict::Drop(DropReason::NoHeadroom);
        }
        let d = f.data_mut();
        d.copy_within(over..over + l3, 0);
        let inner = &d[l3 + over..];
        if v6 {
            let ip = xvs_wire::ipv6::Ipv6Packet::new_unchecked(inner);
            let (tc, flow) = (ip.traffic_class(), ip.flow_label());
            Ipv6Header {
                traffic_class: tc,
                flow_label: flow,
                payload_len: (s.l3_len + tun_len) as u16,
                next_header: outer_proto,
                hop_limit: s.ttl,
                src,
                dst: rip,
            }
            .emit(&mut d[l3..]);
        } else {
            let ip = xvs_wire::ipv4::Ipv4Packet::new_unchecked(inner);
            let (tos, ident) = (ip.dscp_ecn(), ip.ident());
            Ipv4Header {
                dscp_ecn: tos,
                total_len: (s.l3_len + over) as u16,
                ident,
                dont_frag: s.dont_frag,
                ttl: s.ttl,
                protocol: outer_proto,
                src: v4_of(&src),
                dst: v4_of(&rip),
            }
            .emit(&mut d[l3..]);
        }
        let t = l3 + ip_len;
        let end = l3 + over + s.l3_len;
        match tun.kind {
            TunnelKind::Ipip => {}
            TunnelKind::Gue => {
                // The source port spreads the real server's receive over its queues, as the
                // kernel's udp_flow_src_port does: a hash of the flow, in the ephemeral range.
                let sport = encap::gue_source_port(&s.key);
                encap::emit_udp_gue(&mut d[t..], sport, tun.port, inner_proto, s.l3_len);
                if tun.csum == TunnelCsum::Csum {
                    if v6 {
                        encap::udp_checksum_v6(&mut d[t..end], src, rip);
                    } else {
                        encap::udp_checksum_v4(&mut d[t..end], v4_of(&src), v4_of(&rip));
                    }
                }
            }
            TunnelKind::Gre => {
                let ethertype = if v6 {
                    encap::ETHERTYPE_IPV6
                } else {
                    encap::ETHERTYPE_IPV4
                };
                encap::emit_gre(&mut d[t..end], ethertype, tun.csum == TunnelCsum::Csum);
            }
        }
        f.truncate(end);
        Self::l2_out(f, nh)
    }
}
