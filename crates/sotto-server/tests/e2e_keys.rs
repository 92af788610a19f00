//! The E2E key directory: publish and reset, own keys, trust store, public keys visible only to
//! room co-members, identity keys unique per user, and the `e2e.enabled` switch.

mod common;

use common::TestServer;
use serde_json::json;
use sotto_api::ErrorCode;
use sotto_api::rest::{E2eOwnKeys, PublicKeys, SettingsMap};
use sotto_client::{Client, Method, RawResponse};

/// A distinct valid key (43 characters of unpadded base64, zero tail bits).
fn key(n: u32) -> String {
    format!("{n:A>42}A")
}

async fn put(c: &Client, path: &str, body: serde_json::Value) -> RawResponse {
    c.raw(
        Method::PUT,
        path,
        Some(("application/json", serde_json::to_vec(&body).unwrap())),
        &[],
    )
    .await
    .expect("request")
}

async fn get(c: &Client, path: &str) -> RawResponse {
    c.raw(Method::GET, path, None, &[]).await.expect("request")
}

async fn publish(c: &Client, curve: &str, ed: &str) -> RawResponse {
    put(
        c,
        "/api/v1/e2e/keys",
        json!({"curve25519": curve, "ed25519": ed, "key_backup": "YmFja3Vw", "trust_store": "dHJ1c3Q="}),
    )
    .await
}

fn code(r: &RawResponse) -> (u16, Option<ErrorCode>) {
    (r.status, r.error_code())
}

#[tokio::test]
async fn publish_read_reset_and_trust_store() {
    let ts = TestServer::start().await;
    let admin = ts.admin().await;
    let a = ts.user(&admin, "alice").await;
    let r = get(&a, "/api/v1/e2e/keys/me").await;
    assert_eq!(code(&r), (404, Some(ErrorCode::E2eNotSetUp)));
    let r = put(
        &a,
        "/api/v1/e2e/trust-store",
        json!({"trust_store": "AAAA"}),
    )
    .await;
    assert_eq!(code(&r), (404, Some(ErrorCode::E2eNotSetUp)));

    assert_eq!(publish(&a, &key(1), &key(2)).await.status, 200);
    let r = get(&a, "/api/v1/e2e/keys/me").await;
    assert_eq!(r.status, 200);
    let own: E2eOwnKeys = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(own.curve25519, key(1));
    assert_eq!(own.ed25519, key(2));
    assert_eq!(own.key_backup, "YmFja3Vw");
    assert_eq!(own.trust_store, "dHJ1c3Q=");

    // Trust store replaced alone.
    let r = put(
        &a,
        "/api/v1/e2e/trust-store",
        json!({"trust_store": "bmV3"}),
    )
    .await;
    assert_eq!(r.status, 200);
    let own: E2eOwnKeys =
        serde_json::from_slice(&get(&a, "/api/v1/e2e/keys/me").await.body).unwrap();
    assert_eq!(own.trust_store, "bmV3");
    assert_eq!(own.curve25519, key(1));

    // Reset: new keys replace the old ones; the old key is free again.
    assert_eq!(publish(&a, &key(3), &key(4)).await.status, 200);
    let own: E2eOwnKeys =
        serde_json::from_slice(&get(&a, "/api/v1/e2e/keys/me").await.body).unwrap();
    assert_eq!((own.curve25519, own.ed25519), (key(3), key(4)));

    // A 4 MiB trust store fits.
    let big = "A".repeat(4 * 1024 * 1024 / 3 * 4);
    let r = put(&a, "/api/v1/e2e/trust-store", json!({ "trust_store": big })).await;
    assert_eq!(r.status, 200, "{:?}", r.error_code());
    let too_big = "A".repeat((4 * 1024 * 1024 / 3 + 2) * 4);
    let r = put(
        &a,
        "/api/v1/e2e/trust-store",
        json!({ "trust_store": too_big }),
    )
    .await;
    assert_eq!(code(&r), (413, Some(ErrorCode::PayloadTooLarge)));
}

#[tokio::test]
async fn malformed_keys_and_blobs_are_refused() {
    let ts = TestServer::start().await;
    let admin = ts.admin().await;
    let a = ts.user(&admin, "alice").await;
    for (curve, ed) in [
        (format!("{}=", key(1)), key(2)),
        ("short".to_string(), key(2)),
        (key(1), format!("{}B", &key(2)[..42])),
        (key(1), format!("{}_", &key(2)[..42])),
    ] {
        let r = publish(&a, &curve, &ed).await;
        assert_eq!(
            code(&r),
            (400, Some(ErrorCode::InvalidInput)),
            "{curve} {ed}"
        );
    }
    let r = put(
        &a,
        "/api/v1/e2e/keys",
        json!({"curve25519": key(1), "ed25519": key(2), "key_backup": "not base64!", "trust_store": "AAAA"}),
    )
    .await;
    assert_eq!(code(&r), (400, Some(ErrorCode::InvalidInput)));
    let r = put(
        &a,
        "/api/v1/e2e/keys",
        json!({"curve25519": key(1), "ed25519": key(2), "key_backup": "AAAA", "trust_store": "AAAA", "x": 1}),
    )
    .await;
    assert_eq!(code(&r), (400, Some(ErrorCode::UnknownField)));
    assert_eq!(
        code(&get(&a, "/api/v1/e2e/keys/me").await),
        (404, Some(ErrorCode::E2eNotSetUp))
    );
}

#[tokio::test]
async fn an_identity_key_belongs_to_one_user() {
    let ts = TestServer::start().await;
    let admin = ts.admin().await;
    let a = ts.user(&admin, "alice").await;
    let b = ts.user(&admin, "bob").await;
    assert_eq!(publish(&a, &key(1), &key(2)).await.status, 200);
    let r = publish(&b, &key(1), &key(5)).await;
    assert_eq!(code(&r), (409, Some(ErrorCode::IdentityKeyTaken)));
    assert_eq!(
        code(&get(&b, "/api/v1/e2e/keys/me").await),
        (404, Some(ErrorCode::E2eNotSetUp))
    );
    // Republishing one's own key is fine.
    assert_eq!(publish(&a, &key(1), &key(2)).await.status, 200);
}

#[tokio::test]
async fn public_keys_are_visible_only_to_room_co_members() {
    let ts = TestServer::start().await;
    let admin = ts.admin().await;
    let a = ts.user(&admin, "alice").await;
    let b = ts.user(&admin, "bob").await;
    let c = ts.user(&admin, "carol").await;
    assert_eq!(publish(&a, &key(1), &key(2)).await.status, 200);
    let path = format!("/api/v1/e2e/keys/{}", a.user_id());
    // No shared room: exactly like a user without keys or no user at all.
    let strangers = code(&get(&b, &path).await);
    assert_eq!(strangers, (404, Some(ErrorCode::NotFound)));
    assert_eq!(
        code(&get(&b, &format!("/api/v1/e2e/keys/{}", c.user_id())).await),
        strangers
    );
    assert_eq!(code(&get(&b, "/api/v1/e2e/keys/999999").await), strangers);
    // Sharing a DM: visible.
    b.dm(a.user_id()).await.expect("dm");
    let r = get(&b, &path).await;
    assert_eq!(r.status, 200);
    let k: PublicKeys = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(
        (k.user_id, k.curve25519, k.ed25519),
        (a.user_id(), key(1), key(2))
    );
    assert!(
        !String::from_utf8_lossy(&r.body).contains("YmFja3Vw"),
        "never the backup"
    );
    // Co-member without keys: the same 404.
    assert_eq!(
        code(&get(&a, &format!("/api/v1/e2e/keys/{}", b.user_id())).await),
        strangers
    );
    // Carol still sees nothing; in a group with alice she does.
    assert_eq!(code(&get(&c, &path).await), strangers);
    a.create_group("g", &[c.user_id()]).await.expect("group");
    assert_eq!(get(&c, &path).await.status, 200);
    // Own keys through the public route too.
    assert_eq!(get(&a, &path).await.status, 200);
    // Unauthenticated: 401.
    assert_eq!(get(&ts.client(), &path).await.status, 401);
}

#[tokio::test]
async fn e2e_can_be_switched_off() {
    let ts = TestServer::start().await;
    let admin = ts.admin().await;
    let a = ts.user(&admin, "alice").await;
    let mut off = SettingsMap::new();
    off.insert("e2e.enabled".into(), json!(false));
    admin.update_settings(&off).await.expect("settings");
    let r = publish(&a, &key(1), &key(2)).await;
    assert_eq!(code(&r), (403, Some(ErrorCode::E2eDisabled)));
    // Existing keys stay readable (users can still unlock); writes are refused.
    let mut on = SettingsMap::new();
    on.insert("e2e.enabled".into(), json!(true));
    admin.update_settings(&on).await.expect("settings");
    assert_eq!(publish(&a, &key(1), &key(2)).await.status, 200);
    admin.update_settings(&off).await.expect("settings");
    assert_eq!(get(&a, "/api/v1/e2e/keys/me").await.status, 200);
    let r = put(
        &a,
        "/api/v1/e2e/trust-store",
        json!({"trust_store": "AAAA"}),
    )
    .await;
    assert_eq!(code(&r), (403, Some(ErrorCode::E2eDisabled)));
}
