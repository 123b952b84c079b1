//! VRRP as keepalived runs it: the receive checks ([`check`]), one instance's state machine
//! ([`instance`]), and the settings an instance is built from, checked ([`params`]). Pure: no
//! sockets, no clock, no threads; xvsd runs it.

pub mod check;
pub mod instance;
pub mod params;
#[cfg(test)]
mod tests;

pub use check::{Received, Reject};
pub use instance::{Action, Instance, Params, SEC, State};
