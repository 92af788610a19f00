//! E2E key directory handlers.

use axum::Json;
use axum::extract::State;
use sotto_api::UserId;
use sotto_api::rest::{E2eKeysUpload, E2eOwnKeys, Ok as OkBody, PublicKeys, TrustStoreUpload};

use super::extract::{ApiJson, ApiPath, Auth};
use crate::app::App;
use crate::error::ApiResult;

pub(super) async fn publish(
    State(app): State<App>,
    Auth(c): Auth,
    ApiJson(up): ApiJson<E2eKeysUpload>,
) -> ApiResult<Json<OkBody>> {
    app.e2e.publish(&c, up).await?;
    Ok(Json(OkBody { ok: true }))
}

pub(super) async fn own(State(app): State<App>, Auth(c): Auth) -> ApiResult<Json<E2eOwnKeys>> {
    app.e2e.own(&c).await.map(Json)
}

pub(super) async fn trust_store(
    State(app): State<App>,
    Auth(c): Auth,
    ApiJson(up): ApiJson<TrustStoreUpload>,
) -> ApiResult<Json<OkBody>> {
    app.e2e.set_trust_store(&c, up).await?;
    Ok(Json(OkBody { ok: true }))
}

pub(super) async fn public_keys(
    State(app): State<App>,
    Auth(c): Auth,
    ApiPath(user): ApiPath<UserId>,
) -> ApiResult<Json<PublicKeys>> {
    app.e2e.public_keys(&c, user).await.map(Json)
}
