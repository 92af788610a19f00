//! Safety numbers: what two people compare to know that no one sits between them.
//!
//! The scheme follows Signal's numeric fingerprints. For each user a 30-digit half is derived:
//!
//! ```text
//! h = SHA-512(version_u16_be || identity || user_id)
//! repeat 5200 times: h = SHA-512(h || identity)
//! digits = for each of the first six 5-byte chunks of h: (chunk as u40 big-endian) mod 100000
//! ```
//!
//! where `identity` is the 64-byte [`PublicIdentity`] (Curve25519 then Ed25519). The two halves
//! are concatenated ordered by user id (byte order), so both people see the same 60 digits, shown
//! as 12 groups of 5. If either side sees a different key for anyone, the numbers differ.

use sha2::{Digest, Sha512};

use crate::identity::PublicIdentity;

/// Version of the safety-number derivation, mixed into every half.
pub const SAFETY_NUMBER_VERSION: u16 = 1;
const ITERATIONS: usize = 5200;

/// A 60-digit safety number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SafetyNumber {
    digits: String,
}

impl SafetyNumber {
    /// Derives the safety number of a conversation between two users. The argument order does not
    /// matter: swapping the two users gives the same number.
    pub fn new(
        user_a: &str,
        keys_a: &PublicIdentity,
        user_b: &str,
        keys_b: &PublicIdentity,
    ) -> Self {
        let half_a = half(user_a, keys_a);
        let half_b = half(user_b, keys_b);
        let digits = if user_a.as_bytes() <= user_b.as_bytes() {
            half_a + &half_b
        } else {
            half_b + &half_a
        };
        Self { digits }
    }

    /// The 60 digits without separators.
    pub fn digits(&self) -> &str {
        &self.digits
    }

    /// The 12 groups of 5 digits, for display.
    pub fn groups(&self) -> Vec<&str> {
        (0..12)
            .filter_map(|i| self.digits.get(i * 5..i * 5 + 5))
            .collect()
    }
}

impl std::fmt::Display for SafetyNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.groups().join(" "))
    }
}

fn half(user_id: &str, keys: &PublicIdentity) -> String {
    let identity = keys.to_bytes();
    let mut hash = Sha512::new()
        .chain_update(SAFETY_NUMBER_VERSION.to_be_bytes())
        .chain_update(identity)
        .chain_update(user_id.as_bytes())
        .finalize();
    for _ in 0..ITERATIONS {
        hash = Sha512::new()
            .chain_update(hash)
            .chain_update(identity)
            .finalize();
    }
    let mut out = String::with_capacity(30);
    for chunk in hash.chunks_exact(5).take(6) {
        let value = chunk
            .iter()
            .fold(0u64, |acc, byte| (acc << 8) | u64::from(*byte));
        out.push_str(&format!("{:05}", value % 100_000));
    }
    out
}
