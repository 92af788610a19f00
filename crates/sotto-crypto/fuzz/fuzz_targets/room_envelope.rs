#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sotto_crypto::fuzzing::room_envelope(data));
