//! Sotto's wire types: everything that crosses the network between a Sotto server and its
//! clients, and nothing else.
//!
//! * [`rest`]: JSON bodies of the HTTP API under `/api/v1`.
//! * [`realtime`]: JSON events carried as WebSocket *text* frames on `/api/v1/ws`.
//! * [`ephemeral`]: the *binary* WebSocket frame class for events that are delivered to a user or
//!   to exactly one connection, never stored and never replayed (the seam the off-the-record
//!   relay builds on).
//! * [`otr`]: the relay-visible header of off-the-record packets and the relay's notices.
//! * [`error`]: stable error codes and the error body `{"error":{"code":"...","message":"..."}}`.
//!
//! This crate owns the *transport*. What is inside an encrypted envelope or an ephemeral payload
//! belongs to `sotto-crypto`; here both are opaque.

pub mod ephemeral;
pub mod error;
pub mod otr;
pub mod realtime;
pub mod rest;

pub use error::{ErrorBody, ErrorCode, ErrorDetail};

/// A user's id, assigned by the server.
pub type UserId = i64;
/// A room's id, assigned by the server.
pub type RoomId = i64;
/// A stored message's id, assigned by the server; increases with time within a server.
pub type MessageId = i64;
/// A login session's id (not its secret token).
pub type SessionId = i64;
/// An uploaded file's id.
pub type UploadId = i64;
/// Position in the stream of stored realtime events; clients resume from the last one they saw.
pub type Seq = i64;
