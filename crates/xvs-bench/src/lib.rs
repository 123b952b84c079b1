//! xvs's benchmark tools: the traffic generator and sink (`xvs-gen`) and the harness that runs
//! every contender side by side (`xvs-bench`). The generator builds its frames with etherparse
//! and moves them with xvs-io's AF_XDP sockets; it never uses xvs's forwarding code.

pub mod frames;
pub mod reports;
