//! Criterion benchmarks of the xvs forwarding core live in `benches/forwarder.rs`;
//! run them with `cargo bench -p xvs-benches`.
