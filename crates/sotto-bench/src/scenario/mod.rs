//! The scenarios, each a function from a spec to a report.

use std::path::PathBuf;

pub mod connections;
pub mod handshakes;
pub mod http1;
pub mod otr_relay;
pub mod persisted;
pub mod socket;
pub mod sweep;

/// Where the Sotto server under test comes from.
#[derive(Debug, Clone)]
pub enum SottoSource {
    /// Start this `sotto` binary as a child process with a temporary data directory (the
    /// normal case: its CPU and memory are measured apart).
    Spawn(PathBuf),
    /// A fresh server that is already running (the smoke test starts one in its own process).
    Running {
        /// Base URL.
        url: String,
        /// Its one-time admin set-up token.
        setup_token: String,
        /// The process it runs in.
        pid: u32,
    },
}

/// Why a scenario failed.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// A measured process did not start.
    #[error(transparent)]
    Spawn(#[from] crate::spawn::SpawnError),
    /// Setting the server up failed.
    #[error(transparent)]
    Provision(#[from] crate::provision::ProvisionError),
    /// A raw WebSocket failed.
    #[error("websocket: {0}")]
    WebSocket(#[from] tokio_tungstenite::tungstenite::Error),
    /// An authenticated realtime socket could not be opened.
    #[error(transparent)]
    Socket(#[from] socket::SocketError),
    /// A `/proc` figure could not be read.
    #[error(transparent)]
    Process(#[from] crate::process::ProcessError),
    /// ejabberd could not be installed or started.
    #[error(transparent)]
    Ejabberd(#[from] crate::ejabberd::EjabberdError),
    /// An XMPP client could not be set up.
    #[error(transparent)]
    Xmpp(#[from] crate::xmpp::XmppError),
}
