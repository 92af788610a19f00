//! Replays the saved fuzz corpora (`fuzz/corpus/<target>/`) through the same entry points the
//! fuzz targets use, on stable, as part of the ordinary test run.

#![cfg(not(target_arch = "wasm32"))]

use std::path::Path;

fn replay(target: &str, check: fn(&[u8])) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        check(&bytes);
        count += 1;
    }
    count
}

#[test]
fn otr_packet_corpus() {
    assert!(replay("otr_packet", sotto_crypto::fuzzing::packet) > 0);
}

#[test]
fn otr_inner_corpus() {
    assert!(replay("otr_inner", sotto_crypto::fuzzing::inner) > 0);
}

#[test]
fn key_backup_corpus() {
    assert!(replay("key_backup", sotto_crypto::fuzzing::backup) > 0);
}

#[test]
fn keys_and_trust_corpus() {
    assert!(replay("keys_and_trust", sotto_crypto::fuzzing::keys_and_trust) > 0);
}

#[test]
fn otr_session_corpus() {
    assert!(replay("otr_session", sotto_crypto::fuzzing::session) > 0);
}
