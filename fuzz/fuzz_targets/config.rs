//! Fuzz target: see `xvs_fuzz::config`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| xvs_fuzz::config(data));
