//! A worker's memo of service lookups: what [`ServiceTable::lookup`] answered for a
//! (family, protocol, destination, port), kept until the next snapshot. New connections to the
//! same virtual service (the common case: a handful of services, millions of clients) find it
//! with one comparison instead of the mark rules and two hash-map probes.

use crate::ServiceId;
use crate::service::{Family, ServiceTable};

/// Memo slots (direct-mapped).
const SLOTS: usize = 64;

#[derive(Clone, Copy, PartialEq, Eq)]
struct Slot {
    dst: [u8; 16],
    dport: u16,
    proto: u8,
    v6: bool,
    /// 0: empty; else 1 + the answer (`u16::MAX`: no service).
    answer: u32,
}

const EMPTY: Slot = Slot {
    dst: [0; 16],
    dport: 0,
    proto: 0,
    v6: false,
    answer: 0,
};

const NONE: u32 = u16::MAX as u32;

/// The memo of one worker.
pub(super) struct ServiceMemo {
    slots: [Slot; SLOTS],
}

impl ServiceMemo {
    pub fn new() -> ServiceMemo {
        ServiceMemo {
            slots: [EMPTY; SLOTS],
        }
    }

    /// Forgets every answer (a new snapshot).
    pub fn clear(&mut self) {
        self.slots = [EMPTY; SLOTS];
    }

    /// `table.lookup(family, proto, dst, dport)`, remembered.
    #[inline]
    pub fn lookup(
        &mut self,
        table: &ServiceTable,
        family: Family,
        proto: u8,
        dst: &[u8; 16],
        dport: u16,
    ) -> Option<ServiceId> {
        let v6 = family == Family::V6;
        let lo = u64::from_le_bytes([
            dst[8], dst[9], dst[10], dst[11], dst[12], dst[13], dst[14], dst[15],
        ]);
        let x = lo ^ (u64::from(dport) << 16) ^ u64::from(proto) ^ (u64::from(dst[0]) << 8);
        let i = (x.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 58) as usize & (SLOTS - 1);
        let s = &mut self.slots[i];
        if s.answer != 0 && s.dport == dport && s.proto == proto && s.v6 == v6 && s.dst == *dst {
            return (s.answer - 1 != NONE).then(|| (s.answer - 1) as ServiceId);
        }
        let found = table.lookup(family, proto, dst, dport).map(|svc| svc.id);
        *s = Slot {
            dst: *dst,
            dport,
            proto,
            v6,
            answer: 1 + found.map_or(NONE, u32::from),
        };
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::{Protocol, ServiceKey, ServiceOptions};
    use xvs_wire::summary::v4_mapped;

    #[test]
    fn answers_as_the_table_does_and_remembers_misses_too() {
        let mut t = ServiceTable::new(8, 8);
        let key = ServiceKey::Addr {
            proto: Protocol::Tcp,
            addr: "198.51.100.1".parse().unwrap(),
            port: 80,
        };
        let id = t.add_service(key, ServiceOptions::default()).unwrap();
        let mut m = ServiceMemo::new();
        let vip = v4_mapped([198, 51, 100, 1]);
        for _ in 0..2 {
            assert_eq!(m.lookup(&t, Family::V4, 6, &vip, 80), Some(id));
            assert_eq!(m.lookup(&t, Family::V4, 6, &vip, 81), None);
            assert_eq!(m.lookup(&t, Family::V4, 17, &vip, 80), None);
        }
        // The memo answers from memory until cleared: a new snapshot clears it.
        let empty = ServiceTable::new(8, 8);
        assert_eq!(m.lookup(&empty, Family::V4, 6, &vip, 80), Some(id));
        m.clear();
        assert_eq!(m.lookup(&empty, Family::V4, 6, &vip, 80), None);
    }
}
