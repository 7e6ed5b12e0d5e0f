//! libFuzzer entry point of [`airouter_fuzz::auth::check`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| airouter_fuzz::auth::check(data));
