//! What the director answers: listings, statistics, health and traces, built from its state
//! without changing it (a trace borrows the control thread's forwarder).

pub mod health;
pub mod listing;
pub mod stats;
#[cfg(test)]
mod tests;
pub mod trace;
