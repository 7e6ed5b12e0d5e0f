//! libFuzzer entry point of [`airouter_fuzz::header_wire::check`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| airouter_fuzz::header_wire::check(data));
