//! libFuzzer entry point of [`airouter_fuzz::multipart::check`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| airouter_fuzz::multipart::check(data));
