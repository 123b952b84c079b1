//! Fuzz target: see `xvs_fuzz::steer` (needs root: it loads the steering program).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| xvs_fuzz::steer(data));
