//! Bad input: every case asserts the exact status and stable error code, and that a failed
//! operation leaves nothing behind.

mod common;

use std::time::Duration;

use common::{PW, TestServer, expect};
use serde_json::json;
use sotto_api::ErrorCode;
use sotto_api::realtime::{ClientEvent, ServerEvent};
use sotto_api::rest::{MessageBody, SendMessageRequest};
use sotto_client::{Client, ConnectOptions, Method, RealtimeEvent};

const JSON: &str = "application/json";

struct Case {
    name: &'static str,
    who: Who,
    method: Method,
    path: String,
    body: Option<(&'static str, Vec<u8>)>,
    headers: Vec<(&'static str, String)>,
    status: u16,
    code: ErrorCode,
}

#[derive(Clone, Copy)]
enum Who {
    Anon,
    Alice,
    Carol,
    AliceCookie,
    Admin,
}

fn case(
    name: &'static str,
    who: Who,
    method: Method,
    path: impl Into<String>,
    status: u16,
    code: ErrorCode,
) -> Case {
    Case {
        name,
        who,
        method,
        path: path.into(),
        body: None,
        headers: Vec::new(),
        status,
        code,
    }
}

impl Case {
    fn json(mut self, body: &str) -> Case {
        self.body = Some((JSON, body.as_bytes().to_vec()));
        self
    }
    fn body(mut self, ct: &'static str, body: Vec<u8>) -> Case {
        self.body = Some((ct, body));
        self
    }
    fn header(mut self, k: &'static str, v: impl Into<String>) -> Case {
        self.headers.push((k, v.into()));
        self
    }
}

#[tokio::test]
async fn bad_input_gets_stable_error_codes() {
    let ts = TestServer::start().await;
    let admin = ts.admin().await;
    let mut m = sotto_api::rest::SettingsMap::new();
    m.insert("registration.policy".into(), json!("open"));
    admin.update_settings(&m).await.expect("open registration");
    let alice = ts.user(&admin, "alice").await;
    let bob = ts.user(&admin, "bob").await;
    let carol = ts.user(&admin, "carol").await;
    let mut alice_cookie = ts.client();
    alice_cookie
        .login_cookie("alice", PW)
        .await
        .expect("cookie login");
    let mut revoked = ts.client();
    revoked.login("alice", PW).await.expect("login");
    let revoked_token = revoked.token().expect("token").to_string();
    revoked.logout().await.expect("logout");

    let dm = alice.dm(bob.user_id()).await.expect("dm");
    let bobs = bob.send_text(dm.id, "bob's message").await.expect("send");
    let carol_room = carol.create_group("carol's", &[]).await.expect("group");
    let carol_upload = carol
        .upload(carol_room.id, "c.txt", b"carol".to_vec())
        .await
        .expect("upload");
    let big = format!(
        r#"{{"body":{{"type":"text","text":"{}"}}}}"#,
        "x".repeat(17_000)
    );
    let huge = format!(
        r#"{{"body":{{"type":"text","text":"{}"}}}}"#,
        "x".repeat(1_100_000)
    );
    let msgs = format!("/api/v1/rooms/{}/messages", dm.id);
    let forged = "ab".repeat(32);

    use ErrorCode as E;
    use Who::*;
    let cases = vec![
        case(
            "malformed JSON",
            Anon,
            Method::POST,
            "/api/v1/accounts/login",
            400,
            E::BadJson,
        )
        .json("{\"username\":"),
        case(
            "JSON of the wrong shape",
            Anon,
            Method::POST,
            "/api/v1/accounts/login",
            400,
            E::BadJson,
        )
        .json("[1,2]"),
        case(
            "unknown field",
            Anon,
            Method::POST,
            "/api/v1/accounts/login",
            400,
            E::UnknownField,
        )
        .json(r#"{"username":"a","password":"b","admin":true}"#),
        case(
            "missing field",
            Anon,
            Method::POST,
            "/api/v1/accounts/login",
            400,
            E::MissingField,
        )
        .json(r#"{"username":"a"}"#),
        case(
            "wrong content type",
            Anon,
            Method::POST,
            "/api/v1/accounts/login",
            415,
            E::UnsupportedMediaType,
        )
        .body("text/plain", b"{}".to_vec()),
        case(
            "invalid username",
            Anon,
            Method::POST,
            "/api/v1/accounts/register",
            400,
            E::InvalidUsername,
        )
        .json(r#"{"username":"Bad Name!","password":"long-enough-1"}"#),
        case(
            "weak password",
            Anon,
            Method::POST,
            "/api/v1/accounts/register",
            400,
            E::WeakPassword,
        )
        .json(r#"{"username":"newbie","password":"short"}"#),
        case(
            "duplicate username",
            Anon,
            Method::POST,
            "/api/v1/accounts/register",
            409,
            E::UsernameTaken,
        )
        .json(r#"{"username":"bob","password":"long-enough-1"}"#),
        case(
            "wrong password",
            Anon,
            Method::POST,
            "/api/v1/accounts/login",
            401,
            E::InvalidCredentials,
        )
        .json(r#"{"username":"bob","password":"not-his-password"}"#),
        case(
            "used set-up token",
            Anon,
            Method::POST,
            "/api/v1/setup",
            400,
            E::InvalidSetupToken,
        )
        .json(r#"{"token":"x","username":"boss","password":"long-enough-1"}"#),
        case(
            "no credentials",
            Anon,
            Method::GET,
            "/api/v1/accounts/me",
            401,
            E::Unauthenticated,
        ),
        case(
            "forged token",
            Anon,
            Method::GET,
            "/api/v1/accounts/me",
            401,
            E::InvalidToken,
        )
        .header("authorization", format!("Bearer {forged}")),
        case(
            "garbage token",
            Anon,
            Method::GET,
            "/api/v1/accounts/me",
            401,
            E::InvalidToken,
        )
        .header("authorization", "Bearer %%%"),
        case(
            "not a bearer header",
            Anon,
            Method::GET,
            "/api/v1/accounts/me",
            401,
            E::InvalidToken,
        )
        .header("authorization", "Basic YTpi"),
        case(
            "revoked token",
            Anon,
            Method::GET,
            "/api/v1/accounts/me",
            401,
            E::InvalidToken,
        )
        .header("authorization", format!("Bearer {revoked_token}")),
        case(
            "forged cookie",
            Anon,
            Method::GET,
            "/api/v1/accounts/me",
            401,
            E::InvalidToken,
        )
        .header("cookie", format!("sotto_session={forged}")),
        case(
            "cookie write without CSRF",
            AliceCookie,
            Method::POST,
            "/api/v1/rooms/groups",
            403,
            E::CsrfFailed,
        )
        .json(r#"{"name":"g"}"#),
        case(
            "cookie write with wrong CSRF",
            AliceCookie,
            Method::POST,
            "/api/v1/rooms/groups",
            403,
            E::CsrfFailed,
        )
        .json(r#"{"name":"g"}"#)
        .header("x-csrf-token", "0000"),
        case(
            "bad cursor",
            Alice,
            Method::GET,
            format!("{msgs}?before=zzz"),
            400,
            E::BadCursor,
        ),
        case(
            "negative cursor",
            Alice,
            Method::GET,
            format!("{msgs}?after=m-1"),
            400,
            E::BadCursor,
        ),
        case(
            "overflowing cursor",
            Alice,
            Method::GET,
            format!("{msgs}?after=m99999999999999999999"),
            400,
            E::BadCursor,
        ),
        case(
            "limit zero",
            Alice,
            Method::GET,
            format!("{msgs}?limit=0"),
            400,
            E::InvalidInput,
        ),
        case(
            "limit not a number",
            Alice,
            Method::GET,
            format!("{msgs}?limit=lots"),
            400,
            E::InvalidInput,
        ),
        case(
            "both cursors",
            Alice,
            Method::GET,
            format!("{msgs}?before=m5&after=m1"),
            400,
            E::InvalidInput,
        ),
        case(
            "room the caller is not in",
            Carol,
            Method::GET,
            msgs.clone(),
            404,
            E::NotFound,
        ),
        case(
            "room that does not exist",
            Carol,
            Method::GET,
            "/api/v1/rooms/987654/messages",
            404,
            E::NotFound,
        ),
        case(
            "room id not a number",
            Alice,
            Method::GET,
            "/api/v1/rooms/abc",
            404,
            E::NotFound,
        ),
        case(
            "sending into someone else's room",
            Carol,
            Method::POST,
            msgs.clone(),
            404,
            E::NotFound,
        )
        .json(r#"{"body":{"type":"text","text":"hi"}}"#),
        case(
            "oversized message",
            Alice,
            Method::POST,
            msgs.clone(),
            413,
            E::PayloadTooLarge,
        )
        .json(&big),
        case(
            "oversized body",
            Alice,
            Method::POST,
            msgs.clone(),
            413,
            E::PayloadTooLarge,
        )
        .json(&huge),
        case(
            "empty message",
            Alice,
            Method::POST,
            msgs.clone(),
            400,
            E::InvalidInput,
        )
        .json(r#"{"body":{"type":"text","text":"  "}}"#),
        case(
            "unknown body type",
            Alice,
            Method::POST,
            msgs.clone(),
            400,
            E::UnknownField,
        )
        .json(r#"{"body":{"type":"html","text":"<b>x</b>"}}"#),
        case(
            "envelope with control bytes",
            Alice,
            Method::POST,
            msgs.clone(),
            400,
            E::InvalidInput,
        )
        .json(r#"{"body":{"type":"encrypted","envelope":"ab\u0001cd"}}"#),
        case(
            "someone else's upload attached",
            Alice,
            Method::POST,
            msgs.clone(),
            404,
            E::NotFound,
        )
        .json(&format!(
            r#"{{"body":{{"type":"text","text":"leak"}},"attachment_id":{}}}"#,
            carol_upload.id
        )),
        case(
            "editing someone else's message",
            Alice,
            Method::PATCH,
            format!("/api/v1/messages/{}", bobs.id),
            403,
            E::Forbidden,
        )
        .json(r#"{"body":{"type":"text","text":"mine now"}}"#),
        case(
            "unknown setting",
            Admin,
            Method::PUT,
            "/api/v1/admin/settings",
            404,
            E::UnknownSetting,
        )
        .json(r#"{"otr.nope":true}"#),
        case(
            "setting of the wrong type",
            Admin,
            Method::PUT,
            "/api/v1/admin/settings",
            400,
            E::InvalidSetting,
        )
        .json(r#"{"messages.max_bytes":"big"}"#),
        case(
            "setting out of range",
            Admin,
            Method::PUT,
            "/api/v1/admin/settings",
            400,
            E::InvalidSetting,
        )
        .json(r#"{"otr.invite_timeout_secs":0}"#),
        case(
            "non-admin writes settings",
            Alice,
            Method::PUT,
            "/api/v1/admin/settings",
            403,
            E::Forbidden,
        )
        .json(r#"{"otr.enabled":false}"#),
        case(
            "unknown route",
            Alice,
            Method::GET,
            "/api/v1/nope",
            404,
            E::RouteNotFound,
        ),
        case(
            "wrong method",
            Alice,
            Method::DELETE,
            "/api/v1/rooms",
            405,
            E::MethodNotAllowed,
        ),
        case(
            "empty search",
            Alice,
            Method::GET,
            "/api/v1/search?q=%20",
            400,
            E::InvalidInput,
        ),
        case(
            "search without q",
            Alice,
            Method::GET,
            "/api/v1/search",
            400,
            E::InvalidInput,
        ),
        case(
            "upload that is not multipart",
            Alice,
            Method::POST,
            format!("/api/v1/rooms/{}/uploads", dm.id),
            415,
            E::UnsupportedMediaType,
        )
        .json("{}"),
        case(
            "upload without a file part",
            Alice,
            Method::POST,
            format!("/api/v1/rooms/{}/uploads", dm.id),
            400,
            E::MissingField,
        )
        .body(
            "multipart/form-data; boundary=XX",
            b"--XX\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nv\r\n--XX--\r\n"
                .to_vec(),
        ),
        case(
            "upload with an unknown query parameter",
            Alice,
            Method::POST,
            format!("/api/v1/rooms/{}/uploads?bogus=1", dm.id),
            400,
            E::InvalidInput,
        )
        .json("{}"),
        case(
            "upload declared encrypted with a non-boolean",
            Alice,
            Method::POST,
            format!("/api/v1/rooms/{}/uploads?encrypted=maybe", dm.id),
            400,
            E::InvalidInput,
        )
        .json("{}"),
        case(
            "room key with an unknown field",
            Alice,
            Method::PUT,
            format!("/api/v1/rooms/{}/keys", dm.id),
            400,
            E::UnknownField,
        )
        .json(r#"{"key_id":"AAAAAAAAAAAAAAAAAAAAAA","epoch":0,"shares":[],"x":1}"#),
        case(
            "room key with a malformed key id",
            Alice,
            Method::PUT,
            format!("/api/v1/rooms/{}/keys", dm.id),
            400,
            E::InvalidInput,
        )
        .json(r#"{"key_id":"AAAA","epoch":0,"shares":[]}"#),
        case(
            "room key in an ordinary room",
            Alice,
            Method::PUT,
            format!("/api/v1/rooms/{}/keys", dm.id),
            403,
            E::E2eRoomNotEncrypted,
        )
        .json(r#"{"key_id":"AAAAAAAAAAAAAAAAAAAAAA","epoch":0,"shares":[]}"#),
        case(
            "room keys of someone else's room",
            Alice,
            Method::GET,
            format!("/api/v1/rooms/{}/keys", carol_room.id),
            404,
            E::NotFound,
        ),
        case(
            "DM with oneself",
            Alice,
            Method::POST,
            "/api/v1/rooms/dm",
            400,
            E::InvalidInput,
        )
        .json(&format!(r#"{{"user_id":{}}}"#, alice.user_id())),
        case(
            "empty group name",
            Alice,
            Method::POST,
            "/api/v1/rooms/groups",
            400,
            E::InvalidInput,
        )
        .json(r#"{"name":"   "}"#),
        case(
            "revoking another user's session",
            Alice,
            Method::DELETE,
            format!("/api/v1/sessions/{}", bob.session_id.expect("sid")),
            404,
            E::NotFound,
        ),
        case(
            "plain GET on the WebSocket route",
            Alice,
            Method::GET,
            "/api/v1/ws",
            400,
            E::InvalidInput,
        ),
        case(
            "bad WebSocket query",
            Alice,
            Method::GET,
            "/api/v1/ws?since=yesterday",
            400,
            E::InvalidInput,
        ),
    ];
    assert!(cases.len() >= 25);
    let mut failures = Vec::new();
    for c in &cases {
        let client: &Client = match c.who {
            Who::Anon => &ts.client(),
            Who::Alice => &alice,
            Who::Carol => &carol,
            Who::AliceCookie => {
                alice_cookie.set_send_csrf(false);
                &alice_cookie
            }
            Who::Admin => &admin,
        };
        let headers: Vec<(&str, &str)> = c.headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = client
            .raw(c.method.clone(), &c.path, c.body.clone(), &headers)
            .await
            .expect("request");
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or(json!(null));
        let shape_ok = body["error"]["code"].is_string() && body["error"]["message"].is_string();
        if r.status != c.status || r.error_code() != Some(c.code) || !shape_ok {
            failures.push(format!(
                "{}: got {} {:?} {}",
                c.name,
                r.status,
                r.error_code(),
                String::from_utf8_lossy(&r.body)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );

    // "Not a member" and "does not exist" are indistinguishable.
    let a = carol.raw(Method::GET, &msgs, None, &[]).await.expect("req");
    let b = carol
        .raw(Method::GET, "/api/v1/rooms/987654/messages", None, &[])
        .await
        .expect("req");
    assert_eq!(a.body, b.body);

    // The failed sends left nothing behind.
    let page = alice
        .history(dm.id, None, None, None)
        .await
        .expect("history");
    assert_eq!(page.messages.len(), 1, "only bob's message");
    assert!(
        alice
            .search("leak", None, None)
            .await
            .expect("search")
            .hits
            .is_empty()
    );
}

#[tokio::test]
async fn bad_websocket_frames_get_error_events_and_the_connection_stays_open() {
    let ts = TestServer::start().await;
    let admin = ts.admin().await;
    let mut rt = admin
        .connect(ConnectOptions::default())
        .await
        .expect("connect");
    let is_error = |want: ErrorCode| move |e: &RealtimeEvent| matches!(e, RealtimeEvent::Event(ServerEvent::Error { code, .. }) if *code == want);
    rt.send_raw_text("{not json".into()).expect("send");
    expect(&mut rt, "bad_frame", is_error(ErrorCode::BadFrame)).await;
    rt.send_raw_text(r#"{"type":"launch_missiles"}"#.into())
        .expect("send");
    expect(&mut rt, "unknown_field", is_error(ErrorCode::UnknownField)).await;
    rt.send_raw_text(format!(
        r#"{{"type":"ping","nonce":1,"pad":"{}"}}"#,
        "x".repeat(5000)
    ))
    .expect("send");
    expect(
        &mut rt,
        "payload_too_large",
        is_error(ErrorCode::PayloadTooLarge),
    )
    .await;
    rt.send_raw_binary(vec![9, 9, 9]).expect("send");
    expect(&mut rt, "bad binary frame", is_error(ErrorCode::BadFrame)).await;
    rt.send_raw_binary(vec![1; 70_000]).expect("send");
    expect(
        &mut rt,
        "oversized binary frame",
        is_error(ErrorCode::PayloadTooLarge),
    )
    .await;
    // Still open.
    rt.send(&ClientEvent::Ping { nonce: 42 }).expect("ping");
    expect(&mut rt, "pong", |e| {
        matches!(e, RealtimeEvent::Event(ServerEvent::Pong { nonce: 42 }))
    })
    .await;
    assert!(
        rt.drain(Duration::from_millis(100))
            .await
            .iter()
            .all(|e| !matches!(e, RealtimeEvent::Closed { .. }))
    );
}

#[tokio::test]
async fn an_edit_cannot_empty_a_text_message() {
    let ts = TestServer::start().await;
    let admin = ts.admin().await;
    let alice = ts.user(&admin, "alice").await;
    let room = alice.create_group("notes", &[]).await.expect("group");
    let msg = alice.send_text(room.id, "words").await.expect("send");
    let blank = MessageBody::Text {
        text: " \n\t ".into(),
    };
    let r = alice.edit(msg.id, blank.clone()).await;
    assert_eq!(
        r.err().and_then(|e| e.code()),
        Some(ErrorCode::InvalidInput),
        "a text-only message cannot be edited to nothing"
    );
    // A message with an attachment may lose its text.
    let up = alice
        .upload(room.id, "a.txt", b"file".to_vec())
        .await
        .expect("upload");
    let with_file = alice
        .send(
            room.id,
            &SendMessageRequest {
                body: MessageBody::Text {
                    text: "caption".into(),
                },
                attachment_id: Some(up.id),
            },
        )
        .await
        .expect("send");
    alice
        .edit(with_file.id, blank)
        .await
        .expect("the attachment remains");
    let page = alice
        .history(room.id, None, None, None)
        .await
        .expect("history");
    assert_eq!(
        page.messages[0].body,
        MessageBody::Text {
            text: "words".into()
        }
    );
}
