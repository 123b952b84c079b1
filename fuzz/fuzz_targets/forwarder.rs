//! Fuzz target: see `xvs_fuzz::forwarder`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| xvs_fuzz::forwarder(data));
