//! The fused fast path: an untagged, option-less IPv4 TCP or UDP packet (not a fragment) is
//! parsed straight into its flow key with one bounds check; if its flow is in the worker's
//! flow cache and the packet cannot move the connection's state, it is sent without touching
//! the shared table. A miss goes on to the shared table with what was parsed and hashed; any
//! other layout takes the general path.

use super::cache::Cached;
use super::flow::FwdInfo;
use super::{Ctx, Frame, Lane, Verdict};
use crate::conn::FlowKey;
use crate::service::Method;
use crate::stats::bump;
use xvs_wire::ip_proto;
use xvs_wire::summary::{FragKind, IpSummary};
use xvs_wire::tcp::flags;

/// TCP flags that may move a connection's state: such packets always visit the shared entry.
pub(super) const STATE_FLAGS: u8 = flags::SYN | flags::FIN | flags::RST;

/// What the fast path made of a frame.
pub(super) enum Fast {
    /// Sent (or dropped) from the flow cache.
    Done(Verdict),
    /// Parsed (summary, table hash of its key), not in the cache: the shared table next.
    Miss(IpSummary, u64),
    /// Another layout: the general path.
    Other,
}

impl Lane {
    /// The fused fast path (see the module's description).
    #[inline(always)]
    pub(super) fn fast(&mut self, cx: &Ctx<'_>, f: &mut Frame<'_>) -> Fast {
        match self.fast_parse(cx, f) {
            Some(x) => x,
            None => Fast::Other,
        }
    }

    #[inline(always)]
    fn fast_parse(&mut self, cx: &Ctx<'_>, f: &mut Frame<'_>) -> Option<Fast> {
        let d = f.data();
        let hdr: &[u8; 54] = d.first_chunk()?;
        // EtherType IPv4, version 4 with a 20-byte header (any TOS).
        if u32::from_be_bytes([hdr[12], hdr[13], hdr[14], hdr[15]]) & 0xffff_ff00 != 0x0800_4500 {
            return None;
        }
        let total = usize::from(u16::from_be_bytes([hdr[16], hdr[17]]));
        let frag = u16::from_be_bytes([hdr[20], hdr[21]]);
        if total < 40 || 14 + total > d.len() || frag & 0x3fff != 0 {
            return None;
        }
        let proto = hdr[23];
        let tcp_flags = match proto {
            ip_proto::TCP => {
                let doff = usize::from(hdr[46] >> 4) * 4;
                if doff < 20 || doff > total - 20 {
                    return None;
                }
                hdr[47]
            }
            ip_proto::UDP => {
                let len = usize::from(u16::from_be_bytes([hdr[38], hdr[39]]));
                if len < 8 || len > total - 20 {
                    return None;
                }
                0
            }
            _ => return None,
        };
        let key = FlowKey::v4(
            proto,
            [hdr[26], hdr[27], hdr[28], hdr[29]],
            u16::from_be_bytes([hdr[34], hdr[35]]),
            [hdr[30], hdr[31], hdr[32], hdr[33]],
            u16::from_be_bytes([hdr[36], hdr[37]]),
        );
        let ch = self.cache.hash(&key);
        let hit = if tcp_flags & STATE_FLAGS == 0 {
            self.cache.get(&key, ch, cx.now)
        } else {
            None
        };
        if let Some(c) = hit {
            if c.method == Method::Dr {
                if let Some(hop) = self
                    .egress
                    .get(c.real as usize)
                    .and_then(|e| e.usable(total))
                {
                    if let Some(rc) = cx.c.real(c.real) {
                        bump(&rc.in_pkts, 1);
                        bump(&rc.in_bytes, total as u64);
                    }
                    return Some(Fast::Done(Self::l2_out(f, hop)));
                }
            }
        }
        let cached = hit.copied();
        let s = IpSummary {
            key,
            tcp_flags,
            ttl: hdr[22],
            frag: FragKind::Whole,
            dont_frag: frag & 0x4000 != 0,
            vlan_count: 0,
            l3_offset: 14,
            l3_len: total,
            l4_offset: 34,
        };
        if let Some(c) = cached {
            if let Some(v) = self.send_cached(cx, f, &s, &c) {
                return Some(Fast::Done(v));
            }
        }
        Some(Fast::Miss(s, cx.table.hash(&key)))
    }

    /// Sends a packet of a cached flow through the common transmit path (every method).
    /// `None` if the real server is gone (a new snapshot is on its way; the shared path
    /// decides).
    #[inline]
    pub(super) fn send_cached(
        &mut self,
        cx: &Ctx<'_>,
        f: &mut Frame<'_>,
        s: &IpSummary,
        c: &Cached,
    ) -> Option<Verdict> {
        let info = FwdInfo {
            real: c.real,
            svc: c.svc,
            laddr: c.laddr,
            lport: c.lport,
            method: c.method,
            proto: s.key.proto(),
            old_state: c.state,
            new_state: c.state,
            // Only verified connections are cached.
            verified: true,
        };
        let real = cx.snap.services.real(info.real)?;
        Some(self.send_to_real(cx, f, s, &info, real))
    }
}
