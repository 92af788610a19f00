//! Setting a Sotto server up for a run, through the SDK like any client: the admin, the raised
//! rate limits, users, 1:1 DMs, published E2E keys, real OTR sessions — and, for relay runs,
//! the hand-over of each established session's connection to a raw socket.
//!
//! The hand-over: `OtrEndpoint` owns its WebSocket inside a background task and offers no raw
//! socket, and its per-message path (an unbounded channel, JSON/event decoding, a decrypt per
//! frame) is exactly the client work a relay benchmark must not include. So each side
//! establishes its session through the SDK, encrypts its frames in that session, then drops its
//! connection abruptly (a network failure) and *resumes* the same connection id from a raw
//! tokio-tungstenite socket (`?resume=<id>`, within the server's grace period). The relay binds
//! sessions to connection ids, and a resumed connection keeps its sessions and its unlocked
//! state, so the raw socket *is* the connection that holds the session: the server routes its
//! frames on exactly the path a browser tab's frames take.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use sotto_api::RoomId;
use sotto_api::ephemeral::{Outgoing, Target};
use sotto_api::otr::{CHANNEL, OtrNotice};
use sotto_api::realtime::ServerEvent;
use sotto_api::rest::SettingsMap;
use sotto_client::sotto_crypto::backup::{KdfParams, Passphrase};
use sotto_client::sotto_crypto::otr::{OtrEvent, OtrState};
use sotto_client::{Client, ConnectOptions, OtrEndpoint, OtrUpdate};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{Bytes, Message};

use crate::load::{ClientSocket, client_websocket_config};

/// Why setting up a run failed.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    /// The SDK reported an error (HTTP, WebSocket, crypto).
    #[error("sdk: {0}")]
    Sdk(#[from] sotto_client::Error),
    /// A raw WebSocket failed.
    #[error("websocket: {0}")]
    WebSocket(#[from] tokio_tungstenite::tungstenite::Error),
    /// An OTR handshake did not complete.
    #[error("otr handshake: {0}")]
    Handshake(String),
    /// The server did not let a raw socket take over a dropped connection.
    #[error("resume: {0}")]
    Resume(String),
}

/// The rate limits a run raises (key, value), reported with the results. The defaults protect
/// a real deployment (50 frames/s per connection, 5 offers a minute per DM) and would be the
/// only thing measured otherwise.
pub const RAISED_LIMITS: &[(&str, u64)] = &[
    ("ratelimit.otr_frames_per_sec", 100_000),
    ("ratelimit.otr_frame_burst", 100_000),
    ("ratelimit.otr_offers_per_min", 10_000),
    ("ratelimit.login_per_ip_per_min", 100_000),
    ("ratelimit.login_per_account_per_min", 100_000),
];

/// The password of every bench user.
const PASSWORD: &str = "bench-password-123";

/// One side of a DM: its HTTP client and its OTR endpoint (an unlocked realtime connection).
pub struct OtrPeer {
    /// HTTP client, logged in.
    pub client: Client,
    /// The realtime connection with the unlocked keys and the room's OTR session.
    pub endpoint: OtrEndpoint,
}

/// Two users, their DM, and an endpoint each with the room's conversation opened.
pub struct OtrPair {
    /// The DM.
    pub room: RoomId,
    /// The side that starts OTR.
    pub first: OtrPeer,
    /// The side that accepts.
    pub second: OtrPeer,
}

/// Creates the admin from the set-up token and raises the rate limits.
pub async fn admin(url: &str, setup_token: &str) -> Result<Client, ProvisionError> {
    let mut admin = Client::new(url);
    admin.setup(setup_token, "bench-admin", PASSWORD).await?;
    let changes: SettingsMap = RAISED_LIMITS
        .iter()
        .map(|(key, value)| ((*key).to_owned(), serde_json::Value::from(*value)))
        .collect();
    admin.update_settings(&changes).await?;
    Ok(admin)
}

/// Creates `count` pairs of users (`bench-<tag>-<i>-a` / `-b`), their DMs and E2E keys, connects
/// an unlocked endpoint for each and opens the room's conversation. Pairs are set up
/// concurrently.
pub async fn otr_pairs(
    admin: &Client,
    tag: &str,
    count: usize,
) -> Result<Vec<OtrPair>, ProvisionError> {
    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..count {
        let admin = admin.clone();
        let tag = tag.to_owned();
        tasks.spawn(async move {
            let first = user(&admin, &format!("bench-{tag}-{index}-a")).await?;
            let second = user(&admin, &format!("bench-{tag}-{index}-b")).await?;
            let room = first.dm(second.user_id()).await?.id;
            let mut first = peer(first).await?;
            let mut second = peer(second).await?;
            first.endpoint.open(&first.client, room).await?;
            second.endpoint.open(&second.client, room).await?;
            Ok::<_, ProvisionError>((
                index,
                OtrPair {
                    room,
                    first,
                    second,
                },
            ))
        });
    }
    let mut pairs = Vec::with_capacity(count);
    while let Some(joined) = tasks.join_next().await {
        let joined = joined.map_err(|e| ProvisionError::Handshake(e.to_string()))?;
        pairs.push(joined?);
    }
    pairs.sort_by_key(|(index, _)| *index);
    Ok(pairs.into_iter().map(|(_, pair)| pair).collect())
}

/// Creates the user `name` (not an admin) and logs it in once; the client holds its token.
pub async fn user(admin: &Client, name: &str) -> Result<Client, ProvisionError> {
    admin.admin_create_user(name, PASSWORD, false).await?;
    let mut client = Client::new(admin.base_url());
    client.login(name, PASSWORD).await?;
    Ok(client)
}

async fn peer(client: Client) -> Result<OtrPeer, ProvisionError> {
    let passphrase =
        Passphrase::generate().map_err(|e| sotto_client::Error::Crypto(e.to_string()))?;
    // Cheap key-backup parameters: the backup is sealed once per user and never measured.
    let keys = client
        .e2e_setup(&passphrase, KdfParams::INSECURE_FOR_TESTS)
        .await?;
    // `connect` returns once the server has taken in the unlocked state, so the peer's offer
    // cannot overtake it.
    let endpoint = OtrEndpoint::connect(&client, keys, ConnectOptions::default()).await?;
    Ok(OtrPeer { client, endpoint })
}

/// Runs one OTR handshake: the first side starts, the second accepts when invited; returns the
/// time from the offer to both sides established.
pub async fn establish(pair: &mut OtrPair, timeout: Duration) -> Result<Duration, ProvisionError> {
    let room = pair.room;
    let started = Instant::now();
    pair.first.endpoint.start(room)?;
    let deadline = started + timeout;
    loop {
        let states = (
            pair.first.endpoint.state(room),
            pair.second.endpoint.state(room),
        );
        if states == (OtrState::Established, OtrState::Established) {
            return Ok(started.elapsed());
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ProvisionError::Handshake(format!(
                "not established in {timeout:?}: {states:?}"
            )));
        }
        let (second_side, update) = tokio::select! {
            update = pair.first.endpoint.next(left) => (false, update),
            update = pair.second.endpoint.next(left) => (true, update),
        };
        match update {
            Some(OtrUpdate::Event {
                event: OtrEvent::Invited { .. },
                ..
            }) if second_side => {
                pair.second.endpoint.accept(room)?;
            }
            Some(OtrUpdate::Notice {
                notice: OtrNotice::Refused { code, message },
                ..
            }) => {
                return Err(ProvisionError::Handshake(format!(
                    "refused: {code:?}: {message}"
                )));
            }
            Some(OtrUpdate::Rejected { error, .. }) => {
                return Err(ProvisionError::Handshake(format!("rejected: {error}")));
            }
            _ => {}
        }
    }
}

/// Ends the pair's OTR session (the first side chooses End OTR) and waits until the second side
/// has seen it, so the next handshake starts from a clean state on both sides.
pub async fn end(pair: &mut OtrPair, timeout: Duration) -> Result<(), ProvisionError> {
    let room = pair.room;
    pair.first.endpoint.end(room)?;
    let deadline = Instant::now() + timeout;
    while !matches!(pair.second.endpoint.state(room), OtrState::Ended(_)) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ProvisionError::Handshake(format!(
                "end not seen: {:?}",
                pair.second.endpoint.state(room)
            )));
        }
        pair.second.endpoint.next(left).await;
    }
    Ok(())
}

/// One established pair handed over to raw sockets, with the frames each side sends.
pub struct RelayPair {
    /// The first side's raw socket (the connection that holds the session).
    pub first: ClientSocket,
    /// The second side's raw socket.
    pub second: ClientSocket,
    /// The first side's frames: ephemeral client frames carrying OTR `frame` packets.
    pub first_frames: Vec<Bytes>,
    /// The second side's frames.
    pub second_frames: Vec<Bytes>,
}

/// Encrypts `frames_per_side` texts of `payload_len` bytes on each side of an established pair,
/// then hands both connections over to raw sockets (see the module doc).
pub async fn hand_over(
    pair: OtrPair,
    payload_len: usize,
    frames_per_side: usize,
) -> Result<RelayPair, ProvisionError> {
    let OtrPair {
        room,
        mut first,
        mut second,
    } = pair;
    let first_frames = encrypt_frames(
        &mut first,
        room,
        second.client.user_id(),
        payload_len,
        frames_per_side,
    )?;
    let second_frames = encrypt_frames(
        &mut second,
        room,
        first.client.user_id(),
        payload_len,
        frames_per_side,
    )?;
    let first_id = first.endpoint.realtime().connection_id.clone();
    let second_id = second.endpoint.realtime().connection_id.clone();
    // A network failure, not a close: the relay keeps the sessions for the resume grace period.
    drop(first.endpoint.drop_abruptly());
    drop(second.endpoint.drop_abruptly());
    let first_socket = resume(&first.client, &first_id).await?;
    let second_socket = resume(&second.client, &second_id).await?;
    Ok(RelayPair {
        first: first_socket,
        second: second_socket,
        first_frames,
        second_frames,
    })
}

/// Real OTR frames from the side's session. They are sent once through the SDK (the only way
/// to get them out of the endpoint is its wire tap, which records what it sends); the peer's
/// endpoint receives them as a warm-up and is dropped without reading them.
fn encrypt_frames(
    side: &mut OtrPeer,
    room: RoomId,
    peer: i64,
    payload_len: usize,
    count: usize,
) -> Result<Vec<Bytes>, ProvisionError> {
    side.endpoint.tap_wire();
    for index in 0..count {
        // Printable text of exactly `payload_len` bytes, different per frame.
        let fill = char::from(b'a' + (index % 26) as u8);
        let text: String = std::iter::repeat_n(fill, payload_len).collect();
        side.endpoint.send_text(room, &text)?;
    }
    let tapped = side.endpoint.tapped();
    if tapped.len() != count {
        return Err(ProvisionError::Handshake(format!(
            "expected {count} tapped frames, got {}",
            tapped.len()
        )));
    }
    Ok(tapped
        .iter()
        .map(|packet| {
            Bytes::from(
                Outgoing {
                    room_id: room,
                    target: Target::User(peer),
                    channel: CHANNEL,
                    payload: packet.clone(),
                }
                .encode(),
            )
        })
        .collect())
}

/// Connects a raw socket that takes over `connection_id` (retrying while the server has not yet
/// noticed the drop), and reads up to the end of its catch-up.
async fn resume(client: &Client, connection_id: &str) -> Result<ClientSocket, ProvisionError> {
    let token = client
        .token()
        .ok_or_else(|| ProvisionError::Resume("not logged in".into()))?;
    let ws_base = client.base_url().replacen("http://", "ws://", 1);
    let url = format!("{ws_base}/api/v1/ws?resume={connection_id}");
    // Generous: on a busy machine (the test command runs everything in parallel) the server
    // can take seconds to notice the drop.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut request = url.as_str().into_client_request()?;
        let bearer = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|e| ProvisionError::Resume(e.to_string()))?;
        request.headers_mut().insert("authorization", bearer);
        let (mut socket, _) = tokio_tungstenite::connect_async_with_config(
            request,
            Some(client_websocket_config()),
            true,
        )
        .await?;
        let resumed = match next_event(&mut socket).await? {
            ServerEvent::Hello { resumed, .. } => resumed,
            other => {
                return Err(ProvisionError::Resume(format!(
                    "expected hello, got {other:?}"
                )));
            }
        };
        if !resumed {
            // The server has not processed the drop yet: this fresh connection holds nothing.
            let _ = socket.close(None).await;
            if Instant::now() > deadline {
                return Err(ProvisionError::Resume(
                    "the server never offered the dropped connection id".into(),
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        }
        while !matches!(
            next_event(&mut socket).await?,
            ServerEvent::CatchUpDone { .. }
        ) {}
        return Ok(socket);
    }
}

/// The next JSON event on a raw socket (binary frames and pings are skipped), within 30 s.
async fn next_event(socket: &mut ClientSocket) -> Result<ServerEvent, ProvisionError> {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(30), socket.next())
            .await
            .map_err(|_| ProvisionError::Resume("no event within 30 s".into()))?;
        match message {
            Some(Ok(Message::Text(text))) => {
                if let Ok(event) = serde_json::from_str::<ServerEvent>(text.as_str()) {
                    return Ok(event);
                }
            }
            Some(Ok(Message::Close(frame))) => {
                return Err(ProvisionError::Resume(format!("closed: {frame:?}")));
            }
            Some(Ok(_)) => {}
            Some(Err(error)) => return Err(error.into()),
            None => return Err(ProvisionError::Resume("connection ended".into())),
        }
    }
}
