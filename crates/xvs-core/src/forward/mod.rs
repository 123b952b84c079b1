//! The forwarding pipeline.
