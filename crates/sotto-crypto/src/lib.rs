//! Client-side cryptography of Sotto, without I/O.
//!
//! Sotto is a team chat server whose 1:1 direct messages can go *off the record*: temporary,
//! end-to-end encrypted, authenticated messages that the server relays but never stores. This
//! crate is everything a client needs for that, and nothing that touches a socket, a file or a
//! clock — bytes and events in, bytes and events out, in the manner of rustls. The Rust SDK uses
//! it natively; the browser uses it through `sotto-wasm`. The server never depends on it.
//!
//! # The pieces, in the order a user meets them
//!
//! 1. [`identity`]: the user's long-term keys (an Olm account on vodozemac).
//! 2. [`backup`]: the identity sealed under the user's E2E passphrase (Argon2id, then
//!    XChaCha20-Poly1305) so the server can keep it; unlocking yields the identity, an in-memory
//!    [`identity::OtrIdentity`] for one-time keys, and the key that seals the trust store.
//! 3. [`trust`]: peers' identity keys pinned on first use, "verified" marks, and the block on
//!    OTR when a pinned key changes. Sealed, so the server stores it without reading it.
//! 4. [`safety`]: the 60-digit safety number two people compare.
//! 5. [`otr`]: the off-the-record state machine — handshake, key confirmation, messages,
//!    acknowledgements, files, refresh, end. Its module documentation walks through the protocol.
//! 6. [`rooms`]: end-to-end encrypted rooms — room keys shared to the members with HPKE, a
//!    per-room key ring, and signed message envelopes; [`files`] encrypts their attachments.
//!
//! # Guarantees this crate keeps
//!
//! - Session state cannot leave memory: [`otr::OtrSession`], [`identity::OtrIdentity`] and
//!   [`rooms::RoomKey`] implement none of `Clone`, `Debug` or `Serialize` (checked at compile
//!   time), and nothing pickles them. Dropping them zeroizes their keys.
//! - Every decoder returns an error on bad input and never panics (fuzzed; see `fuzz/`).
//! - No primitive or ratchet is implemented here: vodozemac, RustCrypto's AEADs and STREAM,
//!   the `hpke` crate, Argon2 and HKDF do the cryptography.

#![forbid(unsafe_code)]
#![deny(
    missing_docs,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

pub mod backup;
mod codec;
pub mod files;
#[doc(hidden)]
pub mod fuzzing;
pub mod identity;
pub mod otr;
pub mod rooms;
pub mod safety;
mod seal;
pub mod trust;

pub use codec::CodecError;
pub use vodozemac;
