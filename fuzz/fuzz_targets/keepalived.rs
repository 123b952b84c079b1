//! Fuzz target: see `xvs_fuzz::keepalived`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| xvs_fuzz::keepalived(data));
