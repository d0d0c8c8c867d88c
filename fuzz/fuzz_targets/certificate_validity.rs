#![no_main]
// The body lives in the library so that `cargo test` replays the corpus.
libfuzzer_sys::fuzz_target!(|data: &[u8]| partfetch::fuzzing::certificate_validity(data));
