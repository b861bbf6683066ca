//! cargo-fuzz target `service`: see `wbauth_fuzzing::service`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = wbauth_fuzzing::service(data);
});
