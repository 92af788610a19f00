//! Raw authenticated realtime sockets, as the `persisted` and `connections` scenarios open them:
//! a bearer token, optionally a chosen loopback source address, small buffers, and the
//! connection's opening (`hello`, then `catch_up_done`) read before it counts as connected.

use std::net::{IpAddr, SocketAddr};

use futures_util::StreamExt;
use sotto_api::realtime::ServerEvent;
use tokio::net::TcpSocket;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// A realtime socket opened from a bound TCP socket (no TLS).
pub type RawSocket = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

/// Why a realtime socket could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    /// TCP bind or connect failed.
    #[error("tcp: {0}")]
    Tcp(#[from] std::io::Error),
    /// The WebSocket handshake or a read failed.
    #[error("websocket: {0}")]
    WebSocket(#[from] WsError),
    /// The server's opening was not what the protocol says.
    #[error("opening: {0}")]
    Opening(String),
}

/// Where and as whom to connect.
#[derive(Debug, Clone)]
pub struct RealtimeTarget {
    /// The server's address (`127.0.0.1:<port>`).
    pub server: SocketAddr,
    /// The server's base URL (`http://127.0.0.1:<port>`).
    pub base_url: String,
}

impl RealtimeTarget {
    /// From the server's base URL (`http://host:port`).
    pub fn from_url(base_url: &str) -> Result<RealtimeTarget, SocketError> {
        let authority = base_url.trim_start_matches("http://").trim_end_matches('/');
        let server = authority
            .parse()
            .map_err(|_| SocketError::Opening(format!("not an ip:port URL: {base_url}")))?;
        Ok(RealtimeTarget {
            server,
            base_url: base_url.trim_end_matches('/').to_owned(),
        })
    }
}

/// Buffers for sockets that mostly read: 4 KiB each way (the server reads with 2 KiB by default).
pub fn small_buffers() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(4096)
        .max_write_buffer_size(64 * 1024)
}

/// Opens `/api/v1/ws` with `token`, from `source` when given (port chosen by the kernel), and
/// reads the opening up to `catch_up_done`. Events before it (presence) are skipped.
pub async fn connect(
    target: &RealtimeTarget,
    token: &str,
    source: Option<IpAddr>,
    config: WebSocketConfig,
) -> Result<RawSocket, SocketError> {
    let tcp = match target.server {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    if let Some(ip) = source {
        tcp.bind(SocketAddr::new(ip, 0))?;
    }
    let stream = tcp.connect(target.server).await?;
    stream.set_nodelay(true)?;
    let ws_url = format!(
        "{}/api/v1/ws",
        target.base_url.replacen("http://", "ws://", 1)
    );
    let mut request = ws_url.as_str().into_client_request()?;
    let bearer = HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|e| SocketError::Opening(e.to_string()))?;
    request.headers_mut().insert("authorization", bearer);
    let (mut socket, _) = tokio_tungstenite::client_async_with_config(
        request,
        MaybeTlsStream::Plain(stream),
        Some(config),
    )
    .await?;
    match next_event(&mut socket).await? {
        ServerEvent::Hello { .. } => {}
        other => {
            return Err(SocketError::Opening(format!(
                "expected hello, got {other:?}"
            )));
        }
    }
    while !matches!(
        next_event(&mut socket).await?,
        ServerEvent::CatchUpDone { .. }
    ) {}
    Ok(socket)
}

/// The next JSON event (other frames skipped), within 30 s.
async fn next_event(socket: &mut RawSocket) -> Result<ServerEvent, SocketError> {
    loop {
        let message = tokio::time::timeout(std::time::Duration::from_secs(30), socket.next())
            .await
            .map_err(|_| SocketError::Opening("no event within 30 s".into()))?;
        match message {
            Some(Ok(Message::Text(text))) => {
                if let Ok(event) = serde_json::from_str::<ServerEvent>(text.as_str()) {
                    return Ok(event);
                }
            }
            Some(Ok(Message::Close(frame))) => {
                return Err(SocketError::Opening(format!("closed: {frame:?}")));
            }
            Some(Ok(_)) => {}
            Some(Err(error)) => return Err(error.into()),
            None => return Err(SocketError::Opening("connection ended".into())),
        }
    }
}

/// One figure from the server's `GET /metrics` (Prometheus text, an unlabelled sample).
pub async fn read_metric(client: &sotto_client::Client, name: &str) -> Option<f64> {
    let response = client
        .raw(sotto_client::Method::GET, "/metrics", None, &[])
        .await
        .ok()?;
    let text = String::from_utf8(response.body).ok()?;
    text.lines().find_map(|line| {
        let (key, value) = line.split_once(' ')?;
        (key == name).then(|| value.trim().parse().ok()).flatten()
    })
}
