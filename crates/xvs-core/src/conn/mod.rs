//! Connection tracking: flow keys, protocol state machines with IPVS's timeouts, and the
//! sharded, bounded connection table shared by all workers.

mod entry;
pub mod state;
mod table;

pub use entry::{Entry, EntryKind};
pub use state::Timeouts;
pub use table::{ConnTable, Displaced, Insert, Lookup, SlotRef, Vacancy};
pub use xvs_wire::flow::FlowKey;

/// The key tag of persistence templates.
pub const fn key_tag_template() -> u8 {
    xvs_wire::flow::TAG_TEMPLATE
}
