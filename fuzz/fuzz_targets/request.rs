//! cargo-fuzz target `request`: see `wbauth_fuzzing::request`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = wbauth_fuzzing::request(data);
});
