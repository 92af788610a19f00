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

#[test]
fn room_envelope_corpus() {
    assert!(replay("room_envelope", sotto_crypto::fuzzing::room_envelope) > 0);
}

#[test]
fn room_share_corpus() {
    assert!(replay("room_share", sotto_crypto::fuzzing::room_share) > 0);
}

#[test]
fn agreement_key_corpus() {
    assert!(replay("agreement_key", sotto_crypto::fuzzing::agreement_key) > 0);
}

/// Writes well-formed seeds into the room targets' corpora (then fuzz and minimise them):
/// `cargo test -p sotto-crypto --test fuzz_corpus -- --ignored seed_room_corpora`.
#[test]
#[ignore = "writes files; run once before fuzzing a new target"]
fn seed_room_corpora() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    for (index, (target, bytes)) in sotto_crypto::fuzzing::room_seeds().into_iter().enumerate() {
        let dir = corpus.join(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("seed-{index}")), bytes).unwrap();
    }
}
