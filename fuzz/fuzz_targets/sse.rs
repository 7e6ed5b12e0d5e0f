//! libFuzzer entry point of [`airouter_fuzz::sse::check`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| airouter_fuzz::sse::check(data));
