//! The changes between two tables (reloads), and the changes that build a table (save).

use super::{Change, Key, RealSpec, ServiceSpec};
use xvs_core::conn::Timeouts;
use xvs_core::service::{Family, ServiceKey, ServiceTable};

/// Sort order of services as ipvsadm lists them: address services before mark services, IPv4
/// before IPv6, then protocol number, address, port.
pub fn service_order(k: &ServiceKey) -> (u32, u8, u8, [u8; 16], u16) {
    match k {
        ServiceKey::Addr { proto, addr, port } => (
            0,
            Family::of(addr).version(),
            proto.number(),
            xvs_core::service::addr16(addr),
            *port,
        ),
        ServiceKey::Fwmark { mark, family } => (*mark, family.version(), 0, [0; 16], 0),
    }
}

/// The changes that turn `old` into `new` (services by key, real servers by address and
/// port): deletions first, then edits, then additions. Unchanged services produce nothing, so
/// their scheduler state and connections are untouched.
pub fn diff(
    old: &ServiceTable,
    old_t: &Timeouts,
    new: &ServiceTable,
    new_t: &Timeouts,
) -> Vec<Change> {
    let mut del = Vec::new();
    let mut edit = Vec::new();
    let mut add = Vec::new();
    let mut olds: Vec<_> = old.services().collect();
    olds.sort_by_key(|s| service_order(&s.key));
    let mut news: Vec<_> = new.services().collect();
    news.sort_by_key(|s| service_order(&s.key));
    for s in &olds {
        if new.find(&s.key).is_none() {
            del.push(Change::DeleteService {
                service: Key(s.key),
            });
        }
    }
    for n in &news {
        let key = Key(n.key);
        let spec = ServiceSpec::of(&n.options, n.key.family());
        let mut nreals: Vec<_> = n.reals.iter().filter_map(|&r| new.real(r)).collect();
        nreals.sort_by_key(|r| (r.addr16(), r.port));
        match old.find(&n.key) {
            None => {
                add.push(Change::AddService { service: key, spec });
                for r in nreals {
                    add.push(Change::AddReal {
                        service: key,
                        real: RealSpec::of(r),
                    });
                }
            }
            Some(o) => {
                if o.options != n.options {
                    edit.push(Change::EditService { service: key, spec });
                }
                let mut oreals: Vec<_> = o.reals.iter().filter_map(|&r| old.real(r)).collect();
                oreals.sort_by_key(|r| (r.addr16(), r.port));
                for r in &oreals {
                    if new.find_real(n, &r.addr, r.port).is_none() {
                        del.push(Change::DeleteReal {
                            service: key,
                            addr: r.addr,
                            port: Some(r.port),
                        });
                    }
                }
                for r in nreals {
                    match old.find_real(o, &r.addr, r.port) {
                        None => add.push(Change::AddReal {
                            service: key,
                            real: RealSpec::of(r),
                        }),
                        Some(x) if x.options != r.options => {
                            edit.push(Change::EditReal {
                                service: key,
                                real: RealSpec::of(r),
                            });
                        }
                        Some(_) => {}
                    }
                }
            }
        }
    }
    let (a, b) = (old_t.ipvsadm_triple(), new_t.ipvsadm_triple());
    if a != b {
        edit.push(Change::SetTimeouts {
            tcp: b.0,
            tcpfin: b.1,
            udp: b.2,
        });
    }
    del.extend(edit);
    del.extend(add);
    del
}

/// The rules that rebuild `table` from nothing, in listing order (`-S`).
pub fn save(table: &ServiceTable) -> Vec<Change> {
    let empty = ServiceTable::new(table.max_services(), table.max_reals());
    let t = Timeouts::default();
    diff(&empty, &t, table, &t)
}
