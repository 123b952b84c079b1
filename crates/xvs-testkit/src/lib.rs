//! Test support for xvs (never linked into the daemon).
//!
//! [`lab`] is the reference topology every forwarder test uses: a director with an external
//! and an internal port, real servers, and one virtual service per forwarding method.
//! [`pkt`] builds frames readably with etherparse — an implementation independent of xvs's own
//! wire code — so expected frames in fixtures are computed, not copied from xvs's output.

pub mod lab;
pub mod pkt;
