//! Safety numbers against fixed vectors (computed independently, see the vectors file). Runs
//! natively and on wasm32.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use sotto_crypto::identity::PublicIdentity;
use sotto_crypto::safety::SafetyNumber;

const VECTORS: &str = include_str!("vectors/safety_numbers.json");

fn vectors() -> Vec<serde_json::Value> {
    let doc: serde_json::Value = serde_json::from_str(VECTORS).unwrap();
    doc["vectors"].as_array().unwrap().clone()
}

fn keys(vector: &serde_json::Value, side: &str) -> PublicIdentity {
    PublicIdentity::from_base64(
        vector[format!("curve25519_{side}")].as_str().unwrap(),
        vector[format!("ed25519_{side}")].as_str().unwrap(),
    )
    .unwrap()
}

#[test]
fn safety_numbers_match_the_fixed_vectors() {
    let vectors = vectors();
    assert!(vectors.len() >= 4);
    for vector in vectors {
        let number = SafetyNumber::new(
            vector["user_a"].as_str().unwrap(),
            &keys(&vector, "a"),
            vector["user_b"].as_str().unwrap(),
            &keys(&vector, "b"),
        );
        assert_eq!(number.digits(), vector["safety_number"].as_str().unwrap());
        assert_eq!(number.digits().len(), 60);
        assert_eq!(number.groups().len(), 12);
        assert!(number.groups().iter().all(|g| g.len() == 5));
        assert_eq!(number.to_string().len(), 60 + 11);
    }
}

#[test]
fn both_sides_see_the_same_number_and_any_other_key_changes_it() {
    let vectors = vectors();
    let (a, b) = (keys(&vectors[0], "a"), keys(&vectors[0], "b"));
    let other = keys(&vectors[2], "b");
    let seen_by_alice = SafetyNumber::new("alice", &a, "bob", &b);
    let seen_by_bob = SafetyNumber::new("bob", &b, "alice", &a);
    assert_eq!(seen_by_alice, seen_by_bob);
    assert_ne!(SafetyNumber::new("alice", &a, "bob", &other), seen_by_bob);
    assert_ne!(SafetyNumber::new("alice", &other, "bob", &b), seen_by_bob);
    assert_ne!(SafetyNumber::new("alice", &a, "bobby", &b), seen_by_bob);
}
