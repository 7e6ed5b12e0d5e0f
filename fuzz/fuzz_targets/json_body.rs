//! libFuzzer entry point of [`airouter_fuzz::json_body::check`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| airouter_fuzz::json_body::check(data));
