//! Stable error codes. Every 4xx/5xx answer of the HTTP API, and every `error` realtime event,
//! carries one of these codes. Codes are part of the API: never rename one, only add.

use serde::{Deserialize, Serialize};

/// A stable, machine-readable error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The body is not valid JSON or does not have the expected shape.
    BadJson,
    /// The body has a field the endpoint does not know.
    UnknownField,
    /// The body lacks a required field.
    MissingField,
    /// A value is syntactically fine but not acceptable (see the message).
    InvalidInput,
    /// The request or frame is larger than allowed.
    PayloadTooLarge,
    /// The `Content-Type` of the request is not what the endpoint accepts.
    UnsupportedMediaType,
    /// A pagination cursor is malformed.
    BadCursor,
    /// The username breaks the username rules.
    InvalidUsername,
    /// The password breaks the password rules.
    WeakPassword,
    /// The username is taken.
    UsernameTaken,
    /// Registration is closed on this server.
    RegistrationClosed,
    /// Registration needs an invite token and none was given.
    InviteRequired,
    /// The invite token is unknown, used or expired.
    InvalidInvite,
    /// The admin set-up token is unknown or already used.
    InvalidSetupToken,
    /// Wrong username or password (deliberately not saying which).
    InvalidCredentials,
    /// Too many attempts; try later.
    RateLimited,
    /// No credentials were sent.
    Unauthenticated,
    /// The session token is unknown, revoked, expired or forged.
    InvalidToken,
    /// A cookie-authenticated write lacks the `X-CSRF-Token` header or it does not match.
    CsrfFailed,
    /// The caller is authenticated but may not do this (e.g. not an admin, not the author).
    Forbidden,
    /// The thing does not exist *or the caller may not see it*; the two are never distinguished.
    NotFound,
    /// The operation does not apply to this kind of room (e.g. inviting into a direct message).
    NotAllowed,
    /// The settings key is unknown.
    UnknownSetting,
    /// The settings value has the wrong type or range.
    InvalidSetting,
    /// The WebSocket upgrade came from an origin that is not allowed.
    OriginRejected,
    /// A WebSocket frame could not be decoded.
    BadFrame,
    /// The target of an ephemeral event is not connected (or not visible to the sender).
    TargetUnreachable,
    /// The caller has not set up E2E keys.
    E2eNotSetUp,
    /// E2E encryption is disabled on this server.
    E2eDisabled,
    /// The identity key is already registered to another user.
    IdentityKeyTaken,
    /// Off-the-record is disabled on this server.
    OtrDisabled,
    /// Off-the-record works only in a direct message with exactly two members.
    OtrNotDirectMessage,
    /// The caller has not published E2E keys or has not unlocked them on this connection.
    OtrNoKeys,
    /// The peer has not set up E2E keys.
    OtrPeerNoKeys,
    /// The peer has no open connection.
    OtrPeerOffline,
    /// The peer is online but has not entered their E2E key on any connection.
    OtrPeerLocked,
    /// The OTR session is unknown to this connection (never distinguished from someone else's).
    OtrUnknownSession,
    /// The room is end-to-end encrypted: a plaintext body, an upload not declared encrypted, or
    /// a message attaching one is refused.
    E2ePlaintextRefused,
    /// The room is not end-to-end encrypted: encrypted bodies, encrypted uploads and room keys
    /// do not apply to it.
    E2eRoomNotEncrypted,
    /// A room key's epoch or recipients are not the room's current epoch and members; refetch
    /// the room's keys and members and retry.
    E2eKeyMembersMismatch,
    /// The envelope's key is not the room's current key, or that key predates the latest
    /// membership change: distribute a new key for the current members first.
    E2eRoomKeyStale,
    /// A room key with this id exists already (key ids are never reused).
    E2eKeyIdTaken,
    /// The encrypted envelope's cleartext header is malformed or of an unknown version.
    E2eBadEnvelope,
    /// No such route.
    RouteNotFound,
    /// The route exists but not with this method.
    MethodNotAllowed,
    /// Something failed on the server; details are in the server log, not here.
    Internal,
    /// A code this client version does not know.
    #[serde(other)]
    Unknown,
}

impl ErrorCode {
    /// The HTTP status the server answers with for this code.
    pub fn http_status(self) -> u16 {
        use ErrorCode::*;
        match self {
            BadJson | UnknownField | MissingField | InvalidInput | BadCursor | InvalidUsername
            | WeakPassword | InvalidSetting | BadFrame | InvalidInvite | InviteRequired
            | InvalidSetupToken | E2eBadEnvelope => 400,
            Unauthenticated | InvalidToken | InvalidCredentials => 401,
            Forbidden | CsrfFailed | RegistrationClosed | OriginRejected | NotAllowed
            | E2eDisabled | OtrDisabled | OtrNotDirectMessage | OtrNoKeys | E2ePlaintextRefused
            | E2eRoomNotEncrypted => 403,
            NotFound | RouteNotFound | UnknownSetting | TargetUnreachable | E2eNotSetUp
            | OtrUnknownSession | OtrPeerNoKeys | OtrPeerOffline | OtrPeerLocked => 404,
            MethodNotAllowed => 405,
            UsernameTaken
            | IdentityKeyTaken
            | E2eKeyMembersMismatch
            | E2eRoomKeyStale
            | E2eKeyIdTaken => 409,
            PayloadTooLarge => 413,
            UnsupportedMediaType => 415,
            RateLimited => 429,
            Internal | Unknown => 500,
        }
    }

    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        use ErrorCode::*;
        match self {
            BadJson => "bad_json",
            UnknownField => "unknown_field",
            MissingField => "missing_field",
            InvalidInput => "invalid_input",
            PayloadTooLarge => "payload_too_large",
            UnsupportedMediaType => "unsupported_media_type",
            BadCursor => "bad_cursor",
            InvalidUsername => "invalid_username",
            WeakPassword => "weak_password",
            UsernameTaken => "username_taken",
            RegistrationClosed => "registration_closed",
            InviteRequired => "invite_required",
            InvalidInvite => "invalid_invite",
            InvalidSetupToken => "invalid_setup_token",
            InvalidCredentials => "invalid_credentials",
            RateLimited => "rate_limited",
            Unauthenticated => "unauthenticated",
            InvalidToken => "invalid_token",
            CsrfFailed => "csrf_failed",
            Forbidden => "forbidden",
            NotFound => "not_found",
            NotAllowed => "not_allowed",
            UnknownSetting => "unknown_setting",
            InvalidSetting => "invalid_setting",
            OriginRejected => "origin_rejected",
            BadFrame => "bad_frame",
            TargetUnreachable => "target_unreachable",
            E2eNotSetUp => "e2e_not_set_up",
            E2eDisabled => "e2e_disabled",
            IdentityKeyTaken => "identity_key_taken",
            OtrDisabled => "otr_disabled",
            OtrNotDirectMessage => "otr_not_direct_message",
            OtrNoKeys => "otr_no_keys",
            OtrPeerNoKeys => "otr_peer_no_keys",
            OtrPeerOffline => "otr_peer_offline",
            OtrPeerLocked => "otr_peer_locked",
            OtrUnknownSession => "otr_unknown_session",
            E2ePlaintextRefused => "e2e_plaintext_refused",
            E2eRoomNotEncrypted => "e2e_room_not_encrypted",
            E2eKeyMembersMismatch => "e2e_key_members_mismatch",
            E2eRoomKeyStale => "e2e_room_key_stale",
            E2eKeyIdTaken => "e2e_key_id_taken",
            E2eBadEnvelope => "e2e_bad_envelope",
            RouteNotFound => "route_not_found",
            MethodNotAllowed => "method_not_allowed",
            Internal => "internal",
            Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The JSON body of every error answer: `{"error":{"code":"...","message":"..."}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The error itself.
    pub error: ErrorDetail,
}

/// Code plus a human-readable message (for people; programs match on the code).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// Stable code.
    pub code: ErrorCode,
    /// Explanation for humans; may change between versions.
    pub message: String,
}

impl ErrorBody {
    /// Builds an error body.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ErrorBody {
            error: ErrorDetail {
                code,
                message: message.into(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_name_matches_serde() {
        for code in [
            ErrorCode::BadJson,
            ErrorCode::CsrfFailed,
            ErrorCode::TargetUnreachable,
            ErrorCode::E2ePlaintextRefused,
            ErrorCode::E2eKeyMembersMismatch,
            ErrorCode::E2eRoomKeyStale,
            ErrorCode::E2eRoomNotEncrypted,
            ErrorCode::E2eKeyIdTaken,
            ErrorCode::E2eBadEnvelope,
        ] {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
        }
        let body = ErrorBody::new(ErrorCode::NotFound, "no");
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"error":{"code":"not_found","message":"no"}}"#
        );
        let unknown: ErrorCode = serde_json::from_str("\"from_the_future\"").unwrap();
        assert_eq!(unknown, ErrorCode::Unknown);
    }
}
