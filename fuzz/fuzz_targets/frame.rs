//! Fuzz target: see `xvs_fuzz::frame`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| xvs_fuzz::frame(data));
