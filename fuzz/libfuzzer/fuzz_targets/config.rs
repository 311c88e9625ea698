//! cargo-fuzz's driver of `rt_fuzz::config` (what it proves is said there).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rt_fuzz::config(data));
