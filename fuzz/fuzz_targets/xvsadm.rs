//! Fuzz target: see `xvs_fuzz::xvsadm`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| xvs_fuzz::xvsadm(data));
