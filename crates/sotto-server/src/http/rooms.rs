//! Room, message, search and settings handlers.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use sotto_api::rest::{
    AddMemberRequest, CreateGroupRequest, DmRequest, EditMessageRequest, HistoryPage,
    MarkReadRequest, Message, MultiDmRequest, Ok as OkBody, PutRoomKeyRequest, Room, RoomKeys,
    SearchResults, SendMessageRequest, SettingsMap,
};
use sotto_api::{MessageId, RoomId, UserId};

use super::extract::{Admin, ApiJson, ApiPath, ApiQuery, Auth};
use crate::app::App;
use crate::error::ApiResult;

fn ok() -> Json<OkBody> {
    Json(OkBody { ok: true })
}

pub(super) async fn list(State(app): State<App>, Auth(c): Auth) -> ApiResult<Json<Vec<Room>>> {
    let mut rooms = app.rooms.list(&c).await?;
    app.messages.summarise(&c, &mut rooms).await?;
    Ok(Json(rooms))
}

pub(super) async fn get(
    State(app): State<App>,
    Auth(c): Auth,
    ApiPath(id): ApiPath<RoomId>,
) -> ApiResult<Json<Room>> {
    app.rooms.get(&c, id).await.map(Json)
}

pub(super) async fn dm(
    State(app): State<App>,
    Auth(c): Auth,
    ApiJson(r): ApiJson<DmRequest>,
) -> ApiResult<Json<Room>> {
    app.rooms.dm(&c, r.user_id, r.encrypted).await.map(Json)
}

pub(super) async fn multi_dm(
    State(app): State<App>,
    Auth(c): Auth,
    ApiJson(r): ApiJson<MultiDmRequest>,
) -> ApiResult<Json<Room>> {
    app.rooms
        .multi_dm(&c, r.user_ids, r.encrypted)
        .await
        .map(Json)
}

pub(super) async fn create_group(
    State(app): State<App>,
    Auth(c): Auth,
    ApiJson(r): ApiJson<CreateGroupRequest>,
) -> ApiResult<Json<Room>> {
    app.rooms
        .create_group(&c, r.name, r.member_ids, r.encrypted)
        .await
        .map(Json)
}

pub(super) async fn add_member(
    State(app): State<App>,
    Auth(c): Auth,
    ApiPath(id): ApiPath<RoomId>,
    ApiJson(r): ApiJson<AddMemberRequest>,
) -> ApiResult<Json<Room>> {
    app.rooms.add_member(&c, id, r.user_id).await.map(Json)
}

pub(super) async fn remove_member(
    State(app): State<App>,
    Auth(c): Auth,
    ApiPath((id, user)): ApiPath<(RoomId, UserId)>,
) -> ApiResult<Json<OkBody>> {
    app.rooms.remove_member(&c, id, user).await.map(|_| ok())
}

pub(super) async fn room_keys(
    State(app): State<App>,
    Auth(c): Auth,
    ApiPath(id): ApiPath<RoomId>,
) -> ApiResult<Json<RoomKeys>> {
    app.room_keys.get(&c, id).await.map(Json)
}

pub(super) async fn put_room_key(
    State(app): State<App>,
    Auth(c): Auth,
    ApiPath(id): ApiPath<RoomId>,
    ApiJson(r): ApiJson<PutRoomKeyRequest>,
) -> ApiResult<Json<OkBody>> {
    app.room_keys.put(&c, id, r).await.map(|_| ok())
}

pub(super) async fn mark_read(
    State(app): State<App>,
    Auth(c): Auth,
    ApiPath(id): ApiPath<RoomId>,
    ApiJson(r): ApiJson<MarkReadRequest>,
) -> ApiResult<Json<OkBody>> {
    app.messages
        .mark_read(&c, id, r.message_id)
        .await
        .map(|_| ok())
}

pub(super) async fn send(
    State(app): State<App>,
    Auth(c): Auth,
    ApiPath(id): ApiPath<RoomId>,
    ApiJson(r): ApiJson<SendMessageRequest>,
) -> ApiResult<Json<Message>> {
    app.messages.send(&c, id, r).await.map(Json)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct HistoryQuery {
    before: Option<String>,
    after: Option<String>,
    limit: Option<i64>,
}

pub(super) async fn history(
    State(app): State<App>,
    Auth(c): Auth,
    ApiPath(id): ApiPath<RoomId>,
    ApiQuery(q): ApiQuery<HistoryQuery>,
) -> ApiResult<Json<HistoryPage>> {
    app.messages
        .history(&c, id, q.before.as_deref(), q.after.as_deref(), q.limit)
        .await
        .map(Json)
}

pub(super) async fn edit(
    State(app): State<App>,
    Auth(c): Auth,
    ApiPath(id): ApiPath<MessageId>,
    ApiJson(r): ApiJson<EditMessageRequest>,
) -> ApiResult<Json<Message>> {
    app.messages.edit(&c, id, r.body).await.map(Json)
}

pub(super) async fn delete(
    State(app): State<App>,
    Auth(c): Auth,
    ApiPath(id): ApiPath<MessageId>,
) -> ApiResult<Json<OkBody>> {
    app.messages.delete(&c, id).await.map(|_| ok())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SearchQuery {
    q: String,
    limit: Option<u32>,
    offset: Option<u32>,
}

pub(super) async fn search(
    State(app): State<App>,
    Auth(c): Auth,
    ApiQuery(q): ApiQuery<SearchQuery>,
) -> ApiResult<Json<SearchResults>> {
    app.search
        .search(&c, &q.q, q.limit, q.offset)
        .await
        .map(Json)
}

pub(super) async fn public_settings(State(app): State<App>) -> Json<SettingsMap> {
    Json(app.settings.public())
}

pub(super) async fn all_settings(State(app): State<App>, Admin(_): Admin) -> Json<SettingsMap> {
    Json(app.settings.all())
}

pub(super) async fn update_settings(
    State(app): State<App>,
    Admin(_): Admin,
    ApiJson(changes): ApiJson<SettingsMap>,
) -> ApiResult<Json<SettingsMap>> {
    app.settings.update(changes).await.map(Json)
}
