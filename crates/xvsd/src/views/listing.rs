//! `xvsadm -L` and `-Lc`: services and real servers with counters and rates, and the
//! connection entries.

use crate::director::Director;
use std::net::IpAddr;
use xvs_control::change::{Key, RealSpec, ServiceSpec};
use xvs_control::proto::{ConnView, ConnsReply, ListReply, RealView, ServiceView};
use xvs_core::conn::EntryKind;
use xvs_core::conn::state::state_name;
use xvs_core::service::{Protocol, ip_from16};

/// Services and real servers with counters and rates.
pub fn list(d: &Director) -> ListReply {
    let t = &d.running.services;
    let services = t
        .services()
        .map(|s| {
            let reals = s
                .reals
                .iter()
                .filter_map(|&id| t.real(id))
                .map(|r| {
                    let g = d.shared.stats.real_totals(r.id);
                    RealView {
                        spec: RealSpec::of(r),
                        active: g.active,
                        inactive: g.inactive,
                        persist: g.persist,
                        stats: d.accounting.real(&d.shared.stats, r.id),
                        rates: d.accounting.real_rates(r.id),
                        up: r.up,
                        inhibit: d.health.inhibits(&s.key),
                    }
                })
                .collect();
            ServiceView {
                service: Key(s.key),
                spec: ServiceSpec::of(&s.options, s.key.family()),
                stats: d.accounting.service(&d.shared.stats, t, &s.key),
                rates: d.accounting.service_rates(&s.key),
                reals,
            }
        })
        .collect();
    ListReply {
        table_size: d.shared.table.capacity() as u64,
        timeouts: d.running.timeouts.ipvsadm_triple(),
        services,
    }
}

/// Connection entries (forward entries and persistence templates), at most `limit`.
pub fn conns(d: &Director, limit: usize) -> ConnsReply {
    let now = d.shared.now().secs();
    let t = &d.running.services;
    let mut out = ConnsReply::default();
    d.shared.table.for_each(|e| {
        let template = match e.kind {
            EntryKind::Forward => false,
            EntryKind::Template => true,
            _ => return,
        };
        if out.conns.len() >= limit {
            out.truncated = true;
            return;
        }
        let Some(real) = t.real(e.real()) else { return };
        let k = &e.key;
        let proto = Protocol::from_number(k.proto()).map_or("IP", Protocol::name);
        let vaddr = match (template, k.proto(), k.version()) {
            // A mark service's template carries the mark where the address goes; IPVS
            // lists it as an address too.
            (true, 0, 4) => {
                let d = k.dst();
                IpAddr::from([d[12], d[13], d[14], d[15]])
            }
            _ => ip_from16(&k.dst()),
        };
        out.conns.push(ConnView {
            proto: proto.to_string(),
            expires: e.expires.saturating_sub(now),
            state: if template {
                "NONE".into()
            } else {
                state_name(k.proto(), e.state).to_string()
            },
            client: ip_from16(&k.src()),
            cport: k.sport(),
            vaddr,
            vport: k.dport(),
            daddr: real.addr,
            dport: if real.port == 0 { k.dport() } else { real.port },
            template,
        });
    });
    out
}
