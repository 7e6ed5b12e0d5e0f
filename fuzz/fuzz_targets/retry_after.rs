//! libFuzzer entry point of [`airouter_fuzz::retry_after::check`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| airouter_fuzz::retry_after::check(data));
