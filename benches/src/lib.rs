//! Criterion benchmarks of the xvs forwarding core live in `benches/`.
