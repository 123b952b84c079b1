//! The running configuration: the master copy of what the published snapshot holds, and its
//! publication. Only [`Director::install`](super::Director) changes it.

use arc_swap::ArcSwap;
use std::sync::Arc;
use xvs_core::conn::Timeouts;
use xvs_core::net::NetState;
use xvs_core::service::ServiceTable;
use xvs_core::{Options, Snapshot};

/// What the workers forward with, as the control thread holds it.
pub struct Running {
    /// The service table.
    pub services: Arc<ServiceTable>,
    /// Connection timeouts.
    pub timeouts: Timeouts,
    /// Behaviour switches.
    pub options: Options,
    /// Ports, routes and neighbours.
    pub net: Arc<NetState>,
    /// Generation of the last published snapshot.
    pub generation: u64,
}

impl Running {
    /// The running state of a published snapshot.
    pub fn of(snap: &Snapshot) -> Running {
        Running {
            services: Arc::clone(&snap.services),
            timeouts: snap.timeouts,
            options: snap.options,
            net: Arc::clone(&snap.net),
            generation: snap.generation,
        }
    }

    /// Publishes the next generation into `to`; workers switch to it between batches.
    pub fn publish(&mut self, to: &ArcSwap<Snapshot>) {
        self.generation += 1;
        to.store(Arc::new(Snapshot::new(
            Arc::clone(&self.services),
            Arc::clone(&self.net),
            self.timeouts,
            self.options,
            self.generation,
        )));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_stores_the_next_generation() {
        let snap = Snapshot::new(
            Arc::new(ServiceTable::new(4, 4)),
            Arc::new(NetState::default()),
            Timeouts::default(),
            Options::default(),
            7,
        );
        let mut r = Running::of(&snap);
        let cell = ArcSwap::from_pointee(snap);
        r.timeouts.udp = 42;
        r.publish(&cell);
        let now = cell.load();
        assert_eq!((r.generation, now.generation), (8, 8));
        assert_eq!(now.timeouts.udp, 42);
    }
}
