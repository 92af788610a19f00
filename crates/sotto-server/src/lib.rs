//! The Sotto server.
//!
//! Layers, from the outside in (arrows only point down):
//!
//! * [`http`]: axum handlers, one thin function per route, plus the realtime WebSocket.
//! * [`services`]: the logic, one file per service; each owns its tables.
//! * [`storage`] (the `Storage` / `Tx` traits; SQLite: sqlx reads, a single batching writer thread)
//!   and [`bus`] (the `Bus` trait; in-process fan-out),
//!   with [`realtime::Hub`] delivering bus messages to this node's connections.
//!
//! The server never decrypts anything: encrypted envelopes and ephemeral payloads are opaque
//! bytes to it.

pub mod app;
pub mod bus;
pub mod config;
pub mod error;
pub mod http;
pub mod metrics;
pub mod realtime;
pub mod secrets;
pub mod services;
pub mod storage;

pub use app::Server;
pub use config::Config;
