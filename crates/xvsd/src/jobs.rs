//! What the socket and metrics threads hand to the control loop, which owns all state: a
//! request and where to send its answer.

use crossbeam_channel::Sender;

/// Work for the control loop from the socket threads: a request to answer, and where to send
/// the answer.
pub enum Job {
    /// One control-socket request line.
    Request(String, Sender<String>),
    /// A metrics scrape: the exposition text.
    Scrape(Sender<String>),
}
