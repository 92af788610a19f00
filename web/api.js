// The HTTP API: one function per endpoint the client uses. Knows paths, JSON and the CSRF
// header; knows nothing about the page.

/** @typedef {{id: number, username: string, is_admin: boolean, deactivated: boolean}} User */
/** @typedef {User & {presence: 'online' | 'away' | 'offline'}} UserWithPresence */
/** @typedef {{type: 'text', text: string} | {type: 'encrypted', envelope: string}} MessageBody */
/**
 * @typedef {{id: number, room_id: number, author_id: number, body: MessageBody,
 *   created_at: number, edited_at?: number | null, attachment?: UploadInfo | null}} Message
 */
/**
 * @typedef {{id: number, kind: 'dm' | 'multi_dm' | 'group', name?: string | null,
 *   members: number[], last_message?: Message | null, unread_count?: number,
 *   encrypted?: boolean, epoch?: number, key_id?: string | null, key_epoch?: number | null}} Room
 */
/** @typedef {{session_id: number, csrf_token: string, user: User}} Session */

/** An error answer of the server, with its stable code. */
export class ApiError extends Error {
  /**
   * @param {number} status
   * @param {string} code
   * @param {string} message
   */
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** @type {string | null} */
let csrfToken = null;

/** @type {((err: ApiError) => void) | null} told when a call answers 401: the session is gone */
let sessionLostListener = null;

/**
 * Counts the sessions this page has held: a 401 for a call made under an earlier one (still
 * in flight when the user logged in again) must not end the new one.
 */
let sessionGeneration = 0;

/**
 * @param {string} method
 * @param {string} path
 * @param {unknown} [body]
 * @returns {Promise<any>}
 */
async function request(method, path, body) {
  const generation = sessionGeneration;
  /** @type {Record<string, string>} */
  const headers = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET' && csrfToken !== null) headers['x-csrf-token'] = csrfToken;
  const res = await fetch(path, {
    method,
    headers,
    credentials: 'same-origin',
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!res.ok) {
    const err = data && data.error ? data.error : {};
    const error = new ApiError(res.status, err.code || 'http_error', err.message || res.statusText);
    // A 401 other than a wrong password means this page's session is gone (revoked, logged
    // out elsewhere, expired): the page must stop acting as the user.
    if (res.status === 401 && error.code !== 'invalid_credentials' && generation === sessionGeneration) {
      csrfToken = null;
      sessionLostListener?.(error);
    }
    throw error;
  }
  return data;
}

/**
 * Remembers the CSRF token of the session for every later write.
 * @param {Session} session
 * @returns {Session}
 */
function adopt(session) {
  if (session.csrf_token !== csrfToken) sessionGeneration += 1;
  csrfToken = session.csrf_token;
  return session;
}

/** The current cookie session (recovers the CSRF token after a reload). @returns {Promise<Session>} */
export async function currentSession() {
  return adopt(await request('GET', '/api/v1/accounts/session'));
}

/**
 * Logs in with a cookie session.
 * @param {string} username
 * @param {string} password
 * @returns {Promise<Session>}
 */
export async function login(username, password) {
  return adopt(await request('POST', '/api/v1/accounts/login', { username, password, cookie: true }));
}

/**
 * Creates the first admin with the set-up token, then logs in with a cookie session (the
 * set-up answer's bearer token is not kept).
 * @param {string} token
 * @param {string} username
 * @param {string} password
 * @returns {Promise<Session>}
 */
export async function setup(token, username, password) {
  await request('POST', '/api/v1/setup', { token, username, password });
  return login(username, password);
}

/** @returns {Promise<void>} */
export async function logout() {
  await request('POST', '/api/v1/accounts/logout');
  csrfToken = null;
}

/** @returns {Promise<UserWithPresence[]>} */
export function users() {
  return request('GET', '/api/v1/users');
}

/** @returns {Promise<Room[]>} */
export function rooms() {
  return request('GET', '/api/v1/rooms');
}

/**
 * `{encrypted}` when the caller chose; absent, the server's setting decides.
 * @param {boolean | undefined} encrypted
 */
function encryptedField(encrypted) {
  return encrypted === undefined ? {} : { encrypted };
}

/**
 * The 1:1 DM with a user (created if needed). An encrypted and an ordinary DM with the same
 * person are distinct rooms.
 * @param {number} userId
 * @param {boolean} [encrypted] absent: the server's `e2e.encrypt_new_dms` decides
 * @returns {Promise<Room>}
 */
export function openDm(userId, encrypted) {
  return request('POST', '/api/v1/rooms/dm', { user_id: userId, ...encryptedField(encrypted) });
}

/**
 * The newest page of a room's history, oldest first.
 * @param {number} roomId
 * @returns {Promise<{messages: Message[], before: string | null, after: string | null}>}
 */
export function history(roomId) {
  return request('GET', `/api/v1/rooms/${encodeURIComponent(roomId)}/messages?limit=50`);
}

/**
 * @param {number} roomId
 * @param {string} text
 * @returns {Promise<Message>}
 */
export function sendText(roomId, text) {
  return request('POST', `/api/v1/rooms/${encodeURIComponent(roomId)}/messages`, {
    body: { type: 'text', text },
  });
}

/**
 * Sends an E2E envelope (base64) into an encrypted room, with the encrypted upload it
 * carries the key of, if any.
 * @param {number} roomId
 * @param {string} envelope
 * @param {number | null} [attachmentId]
 * @returns {Promise<Message>}
 */
export function sendEnvelope(roomId, envelope, attachmentId = null) {
  return request('POST', `/api/v1/rooms/${encodeURIComponent(roomId)}/messages`, {
    body: { type: 'encrypted', envelope },
    ...(attachmentId === null ? {} : { attachment_id: attachmentId }),
  });
}

/**
 * @param {number} roomId
 * @param {number} messageId
 * @returns {Promise<unknown>}
 */
export function markRead(roomId, messageId) {
  return request('POST', `/api/v1/rooms/${encodeURIComponent(roomId)}/read`, { message_id: messageId });
}

/** @returns {Promise<Record<string, unknown>>} */
export function settings() {
  return request('GET', '/api/v1/settings');
}

/**
 * @typedef {{curve25519: string, ed25519: string, agreement_key?: string | null,
 *   agreement_signature?: string | null}} PublishedKeys
 */
/** @typedef {PublishedKeys & {key_backup: string, trust_store: string}} OwnKeys */

/**
 * The caller's own E2E keys and sealed blobs, or null when not set up yet.
 * @returns {Promise<OwnKeys | null>}
 */
export async function ownKeys() {
  try {
    return await request('GET', '/api/v1/e2e/keys/me');
  } catch (err) {
    if (err instanceof ApiError && err.code === 'e2e_not_set_up') return null;
    throw err;
  }
}

/**
 * Publishes the caller's public keys (the room agreement key with its signature included)
 * with the sealed key backup and trust store (base64).
 * @param {OwnKeys} keys
 */
export function publishKeys(keys) {
  return request('PUT', '/api/v1/e2e/keys', keys);
}

/**
 * A user's public identity keys (with the signed room agreement key once published).
 * @param {number} userId
 * @returns {Promise<PublishedKeys & {user_id: number}>}
 */
export function publicKeys(userId) {
  return request('GET', `/api/v1/e2e/keys/${encodeURIComponent(userId)}`);
}

// ---------------------------------------------------------------- accounts and sessions

/**
 * @typedef {{id: number, created_at: number, last_seen_at: number, kind: string,
 *   user_agent?: string | null, current: boolean}} SessionInfo
 */

/**
 * Registers `listener` to be told when any call answers 401 (other than a wrong password at
 * log-in): the page's session no longer exists. `null` stops telling.
 * @param {((err: ApiError) => void) | null} listener
 */
export function onSessionLost(listener) {
  sessionLostListener = listener;
}

/** Forgets the CSRF token, so nothing more is written as this session from this page. */
export function forgetSession() {
  csrfToken = null;
  sessionGeneration += 1;
}

/**
 * Creates an account (with an invite token when the policy asks for one), then logs in
 * with a cookie session.
 * @param {string} username
 * @param {string} password
 * @param {string | null} inviteToken
 * @returns {Promise<Session>}
 */
export async function register(username, password, inviteToken) {
  await request('POST', '/api/v1/accounts/register', {
    username,
    password,
    ...(inviteToken ? { invite_token: inviteToken } : {}),
  });
  return login(username, password);
}

/** The caller's sessions. @returns {Promise<SessionInfo[]>} */
export function sessions() {
  return request('GET', '/api/v1/sessions');
}

/**
 * Ends one of the caller's sessions; its sockets close at once.
 * @param {number} sessionId
 * @returns {Promise<unknown>}
 */
export function revokeSession(sessionId) {
  return request('DELETE', `/api/v1/sessions/${encodeURIComponent(sessionId)}`);
}

// ---------------------------------------------------------------- conversations and search

/**
 * A multi-user DM with these people (at least two besides the caller).
 * @param {number[]} userIds
 * @param {boolean} [encrypted] absent: the server's `e2e.encrypt_new_dms` decides
 * @returns {Promise<Room>}
 */
export function openMultiDm(userIds, encrypted) {
  return request('POST', '/api/v1/rooms/multi-dm', { user_ids: userIds, ...encryptedField(encrypted) });
}

/**
 * A named private group owned by the caller, with these first members.
 * @param {string} name
 * @param {number[]} memberIds
 * @param {boolean} [encrypted] absent: the server's `e2e.encrypt_new_groups` decides
 * @returns {Promise<Room>}
 */
export function createGroup(name, memberIds, encrypted) {
  return request('POST', '/api/v1/rooms/groups', { name, member_ids: memberIds, ...encryptedField(encrypted) });
}

// ---------------------------------------------------------------- room keys (E2E rooms)

/**
 * @typedef {{key_id: string, epoch: number, distributor_id: number, share: string,
 *   created_at: number}} RoomKeyShare
 */
/**
 * @typedef {{epoch: number, kind: 'created' | 'added' | 'removed' | 'left', user_id: number,
 *   actor_id?: number | null, at: number}} MembershipChange
 */
/**
 * @typedef {{epoch: number, members: number[], key_id?: string | null, keys: RoomKeyShare[],
 *   changes: MembershipChange[]}} RoomKeys
 */

/**
 * The caller's own shares of a room's keys (oldest first), the room's epoch and members, and
 * its membership changes.
 * @param {number} roomId
 * @returns {Promise<RoomKeys>}
 */
export function roomKeys(roomId) {
  return request('GET', `/api/v1/rooms/${encodeURIComponent(roomId)}/keys`);
}

/**
 * Publishes a new room key: one share per current member. Answers 409
 * `e2e_key_members_mismatch` when the recipients are not the members or the epoch moved.
 * @param {number} roomId
 * @param {{key_id: string, epoch: number, shares: {user_id: number, share: string}[]}} key
 * @returns {Promise<unknown>}
 */
export function putRoomKey(roomId, key) {
  return request('PUT', `/api/v1/rooms/${encodeURIComponent(roomId)}/keys`, key);
}

/** @typedef {{hits: Message[], next_offset: number | null, unsearched_rooms?: number[]}} SearchResults */

/**
 * Full-text search over the caller's rooms, best first (encrypted messages are never found).
 * @param {string} query
 * @param {number} [offset]
 * @returns {Promise<SearchResults>}
 */
export function search(query, offset = 0) {
  const params = new URLSearchParams({ q: query, limit: '20' });
  if (offset) params.set('offset', String(offset));
  return request('GET', `/api/v1/search?${params}`);
}

// ---------------------------------------------------------------- room view: history, edits, files

/** @typedef {{id: number, room_id: number, filename: string, content_type: string, size: number, inline: boolean}} UploadInfo */
/** @typedef {{messages: Message[], before: string | null, after: string | null}} HistoryPage */

/**
 * The page of a room's history just older than the cursor `before` (from an earlier page),
 * oldest first; its own `before` is null when it reaches the first message.
 * @param {number} roomId
 * @param {string} before
 * @returns {Promise<HistoryPage>}
 */
export function historyBefore(roomId, before) {
  const query = new URLSearchParams({ before, limit: '50' });
  return request('GET', `/api/v1/rooms/${encodeURIComponent(roomId)}/messages?${query}`);
}

/**
 * Replaces the body of the caller's own message (an encrypted one with a new envelope).
 * @param {number} messageId
 * @param {MessageBody} body
 * @returns {Promise<Message>}
 */
export function editMessage(messageId, body) {
  return request('PATCH', `/api/v1/messages/${encodeURIComponent(messageId)}`, { body });
}

/**
 * Deletes the caller's own message (and its attachment).
 * @param {number} messageId
 * @returns {Promise<unknown>}
 */
export function deleteMessage(messageId) {
  return request('DELETE', `/api/v1/messages/${encodeURIComponent(messageId)}`);
}

/**
 * Sends a message carrying an upload made into the same room.
 * @param {number} roomId
 * @param {number} uploadId
 * @param {string} text may be empty: the attachment is the message
 * @returns {Promise<Message>}
 */
export function sendAttachment(roomId, uploadId, text) {
  return request('POST', `/api/v1/rooms/${encodeURIComponent(roomId)}/messages`, {
    body: { type: 'text', text },
    attachment_id: uploadId,
  });
}

/** The address an upload is downloaded (or, for a raster image, shown) from. @param {number} uploadId */
export function uploadUrl(uploadId) {
  return `/api/v1/uploads/${encodeURIComponent(uploadId)}`;
}

/** Rejection of an upload the caller cancelled. */
export class UploadCancelled extends Error {
  constructor() {
    super('The upload was cancelled.');
  }
}

/**
 * Uploads a file into a room as multipart/form-data (part `file`). XMLHttpRequest rather
 * than fetch, because only it reports upload progress. The upload is the uploader's draft
 * until a message attaches it (`sendAttachment`). In an encrypted room the file is the
 * ciphertext, declared encrypted (the server then stores it as opaque bytes).
 * @param {number} roomId
 * @param {File} file
 * @param {(sent: number, total: number) => void} onProgress
 * @param {boolean} [encrypted]
 * @returns {{done: Promise<UploadInfo>, cancel: () => void}}
 */
export function uploadFile(roomId, file, onProgress, encrypted = false) {
  const xhr = new XMLHttpRequest();
  const done = new Promise((resolve, reject) => {
    xhr.open('POST', `/api/v1/rooms/${encodeURIComponent(roomId)}/uploads${encrypted ? '?encrypted=true' : ''}`);
    if (csrfToken !== null) xhr.setRequestHeader('x-csrf-token', csrfToken);
    xhr.responseType = 'text';
    xhr.upload.addEventListener('progress', (e) => {
      if (e.lengthComputable) onProgress(e.loaded, e.total);
    });
    xhr.addEventListener('load', () => {
      /** @type {any} */
      let data = null;
      try {
        data = xhr.responseText ? JSON.parse(xhr.responseText) : null;
      } catch {
        data = null;
      }
      if (xhr.status >= 200 && xhr.status < 300 && data) {
        resolve(/** @type {UploadInfo} */ (data));
      } else {
        const err = data && data.error ? data.error : {};
        reject(new ApiError(xhr.status, err.code || 'http_error', err.message || xhr.statusText || 'the upload failed'));
      }
    });
    xhr.addEventListener('error', () => reject(new ApiError(0, 'network_error', 'The upload failed: the server could not be reached.')));
    xhr.addEventListener('abort', () => reject(new UploadCancelled()));
    const form = new FormData();
    form.append('file', file, file.name);
    xhr.send(form);
  });
  return { done: /** @type {Promise<UploadInfo>} */ (done), cancel: () => xhr.abort() };
}

// Administration (admins only; the server answers everyone else `forbidden`).

/** @typedef {Record<string, boolean | number | string>} SettingsValues */
/** @typedef {{token: string, url: string, expires_at: number}} Invite */

/**
 * Every setting with its current value.
 * @returns {Promise<SettingsValues>}
 */
export function adminSettings() {
  return request('GET', '/api/v1/admin/settings');
}

/**
 * Changes some settings, all or nothing; answers every setting as it now is.
 * @param {Record<string, unknown>} changes
 * @returns {Promise<SettingsValues>}
 */
export function updateSettings(changes) {
  return request('PUT', '/api/v1/admin/settings', changes);
}

/**
 * Deactivates a user: their sessions end and they can no longer log in.
 * @param {number} userId
 * @returns {Promise<unknown>}
 */
export function deactivateUser(userId) {
  return request('POST', `/api/v1/admin/users/${encodeURIComponent(userId)}/deactivate`);
}

/**
 * A single-use registration link (`expires_at` in milliseconds since the epoch).
 * @returns {Promise<Invite>}
 */
export function createInvite() {
  return request('POST', '/api/v1/admin/invites');
}

/**
 * Replaces the caller's sealed trust store (base64): pins and verified marks.
 * @param {string} trustStore
 */
export function saveTrustStore(trustStore) {
  return request('PUT', '/api/v1/e2e/trust-store', { trust_store: trustStore });
}
