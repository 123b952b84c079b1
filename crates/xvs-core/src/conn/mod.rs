//! Connection tracking: flow keys, protocol state machines, and the sharded table.
