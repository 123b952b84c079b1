//! Fuzz target: see `xvs_fuzz::control`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| xvs_fuzz::control(data));
