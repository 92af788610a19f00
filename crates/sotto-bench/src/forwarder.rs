//! The bare forwarder: the physical limit Sotto's relay is compared against.
//!
//! It accepts WebSocket connections at `/pair/<id>`, pairs the two connections that name the same
//! id, and forwards every binary frame from one to the other. No authentication, no routing
//! table, no parsing of the frames, no crypto: what is left is the cost of the WebSocket library,
//! the runtime and the kernel, which any relay pays too.
//!
//! It runs as its own process (`sotto-bench forwarder --listen ADDR`) so its CPU time and memory
//! are measured apart from the load generator's. Per connection it keeps a small read buffer and
//! a write buffer large enough to batch: frames that are already readable are fed into the
//! partner's write buffer and flushed once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{FutureExt, SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};

/// The line the forwarder prints on stdout once it listens (followed by the address).
pub const READY_LINE: &str = "forwarder listening on ";

/// The path prefix a connection names its pair with.
pub const PAIR_PATH: &str = "/pair/";

/// Buffer sizes per connection.
#[derive(Debug, Clone, Copy)]
pub struct ForwarderConfig {
    /// WebSocket read buffer, bytes.
    pub read_buffer: usize,
    /// WebSocket write buffer (frames are written out when it fills or on flush), bytes.
    pub write_buffer: usize,
}

impl Default for ForwarderConfig {
    fn default() -> Self {
        ForwarderConfig {
            read_buffer: 4096,
            write_buffer: 64 * 1024,
        }
    }
}

impl ForwarderConfig {
    fn websocket(&self) -> WebSocketConfig {
        WebSocketConfig::default()
            .read_buffer_size(self.read_buffer)
            .write_buffer_size(self.write_buffer)
            // Bounded: a partner that stops reading makes the writer wait, never grow without end.
            .max_write_buffer_size(self.write_buffer * 4)
            .max_message_size(Some(1 << 20))
            .max_frame_size(Some(1 << 20))
    }
}

/// What can end one forwarded connection.
#[derive(Debug, thiserror::Error)]
pub enum ForwarderError {
    /// The WebSocket handshake or a frame failed.
    #[error("websocket: {0}")]
    WebSocket(#[from] tungstenite::Error),
    /// The request did not name a pair.
    #[error("the request path does not name a pair")]
    NoPair,
}

type Socket = WebSocketStream<TcpStream>;

/// Connections waiting for their partner, by pair id.
#[derive(Default)]
struct Waiting {
    by_pair: Mutex<HashMap<String, Socket>>,
}

/// Accepts and forwards until the listener fails (the process is stopped with a signal).
pub async fn serve(listener: TcpListener, config: ForwarderConfig) -> std::io::Result<()> {
    let waiting = Arc::new(Waiting::default());
    loop {
        let (stream, _) = listener.accept().await?;
        let waiting = waiting.clone();
        tokio::spawn(async move {
            if let Err(error) = admit(stream, config, &waiting).await {
                eprintln!("forwarder: connection dropped: {error}");
            }
        });
    }
}

/// Upgrades one connection and either parks it or pairs it with its waiting partner.
// The handshake callback's error type is tungstenite's `ErrorResponse`, not ours to shrink.
#[allow(clippy::result_large_err)]
async fn admit(
    stream: TcpStream,
    config: ForwarderConfig,
    waiting: &Waiting,
) -> Result<(), ForwarderError> {
    stream.set_nodelay(true).map_err(tungstenite::Error::Io)?;
    let mut pair_id = None;
    let record_path = |request: &Request, response: Response| -> Result<Response, ErrorResponse> {
        pair_id = request
            .uri()
            .path()
            .strip_prefix(PAIR_PATH)
            .filter(|id| !id.is_empty())
            .map(str::to_owned);
        Ok(response)
    };
    let socket = tokio_tungstenite::accept_hdr_async_with_config(
        stream,
        record_path,
        Some(config.websocket()),
    )
    .await?;
    let pair_id = pair_id.ok_or(ForwarderError::NoPair)?;
    let partner = {
        let mut by_pair = waiting
            .by_pair
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match by_pair.remove(&pair_id) {
            Some(partner) => partner,
            None => {
                by_pair.insert(pair_id, socket);
                return Ok(());
            }
        }
    };
    let (to_first, from_first) = partner.split();
    let (to_second, from_second) = socket.split();
    // One task per direction: each owns one connection's reading half and the other's writing half.
    tokio::spawn(report(forward(from_first, to_second)));
    tokio::spawn(report(forward(from_second, to_first)));
    Ok(())
}

async fn report(forwarding: impl Future<Output = Result<(), ForwarderError>>) {
    if let Err(error) = forwarding.await {
        eprintln!("forwarder: connection dropped: {error}");
    }
}

/// Forwards binary frames until the sender closes; frames already readable go out in one flush.
async fn forward(
    mut from: SplitStream<Socket>,
    mut to: SplitSink<Socket, Message>,
) -> Result<(), ForwarderError> {
    while let Some(first) = from.next().await {
        let mut message = first?;
        loop {
            match message {
                Message::Binary(_) => to.feed(message).await?,
                Message::Close(_) => {
                    let _ = to.close().await;
                    return Ok(());
                }
                // Pings are answered by the library; text is not part of the experiment.
                _ => {}
            }
            match from.next().now_or_never() {
                Some(Some(next)) => message = next?,
                Some(None) => {
                    to.flush().await?;
                    let _ = to.close().await;
                    return Ok(());
                }
                None => break,
            }
        }
        to.flush().await?;
    }
    let _ = to.close().await;
    Ok(())
}
