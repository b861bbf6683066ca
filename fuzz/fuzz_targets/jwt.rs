//! cargo-fuzz target `jwt`: see `wbauth_fuzzing::jwt`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = wbauth_fuzzing::jwt(data);
});
