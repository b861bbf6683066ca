//! cargo-fuzz target `config`: see `wbauth_fuzzing::config`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = wbauth_fuzzing::config(data);
});
