//! Destination hashing (`dh`): the sh table indexed by the destination address, for caches
//! in front of many origin addresses (fwmark services). No fallback: an unavailable server's
//! destinations get no server.

use super::hash::{addr_fold, hash_32};
use super::sh::{TAB_BITS, TAB_SIZE, fill_table};
use super::{Dests, Params, Request, Scheduler};

struct DestinationHash {
    table: Option<Box<[u16; TAB_SIZE]>>,
}

pub(super) fn build(d: &Dests<'_>, _: &Params) -> Box<dyn Scheduler> {
    Box::new(DestinationHash {
        table: fill_table(d),
    })
}

impl Scheduler for DestinationHash {
    fn schedule(&mut self, d: &Dests<'_>, r: &Request<'_>) -> Option<usize> {
        let t = self.table.as_ref()?;
        let i = usize::from(t[hash_32(addr_fold(r.dst, r.v6), TAB_BITS) as usize]);
        d.available(i).then_some(i)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;

    #[test]
    fn same_destination_same_server() {
        let fx = Fixture::new(&[1, 1, 1]);
        let mut s = fx.build("dh", 0);
        let mut seen = std::collections::HashSet::new();
        for k in 0..64u32 {
            let dst = client(1000 + k);
            let mut pick = |src: u32| fx.pick_to(s.as_mut(), client(src), 1, dst, 0);
            let a = pick(1);
            assert_eq!(a, pick(2), "dh ignores the source");
            seen.insert(a);
        }
        assert_eq!(seen.len(), 3, "destinations spread over all servers");
    }
}
