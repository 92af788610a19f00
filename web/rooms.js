// End-to-end encrypted rooms: the room keys (opened from the caller's shares, each checked
// against its distributor's keys as the trust store pins them; a new key made for the current
// members when the room has none or its key predates the latest membership change), sending
// and editing under the room's key, decrypting what is shown, encrypted files, and the local
// search over what this tab decrypted. No DOM. Everything decrypted lives in this tab's memory
// only (never in browser storage); `reset()` (and `lock()` in the wasm) drop it.

import * as api from './api.js';
import * as e2e from './e2e.js';
import { PREVIEWABLE } from './otr.js';

/** @typedef {import('./state.js').ChatState} ChatState */
/** @typedef {import('./api.js').Message} Message */
/** @typedef {import('./api.js').MembershipChange} MembershipChange */
/** @typedef {import('./api.js').PublishedKeys} PublishedKeys */

/** web/pkg: the page's room key rings live on its Rust side; its errors carry stable codes. */
const wasm = e2e.sotto;

/**
 * A file sent into an encrypted room, as the encrypted message carries it: its own key, the
 * STREAM nonce and the SHA-256 of the uploaded ciphertext (standard base64), and what the
 * server must not know (name, type, size).
 * @typedef {{key: string, nonce: string, sha256: string, name: string, type: string, size: number, upload_id: number}} E2eFile
 */
/** @typedef {{text?: string, file?: E2eFile}} E2eContent */
/**
 * A message's decryption: the content with the key id it used, or why it cannot be read.
 * @typedef {{ok: true, keyId: string, content: E2eContent} | {ok: false, code: string, reason: string}} Decrypted
 */
/**
 * A peer's keys as the directory serves them, and what the trust store said about them
 * (`missing` when the peer has no E2E key).
 * @typedef {{verdict: string, keys: PublishedKeys | null}} PeerKeys
 */
/**
 * The state of one encrypted room in this tab.
 * @typedef {{status: 'locked' | 'loading' | 'ready' | 'error', error: string | null, epoch: number,
 *   keyId: string | null, members: number[], changes: MembershipChange[], refused: string[],
 *   unexplained: number[]}} RoomE2e
 */

/** How often a key is re-made when the membership keeps moving underneath. */
const ATTEMPTS = 3;

/** Failures after which the author's keys are looked up again (they may have changed). */
const RECHECK = new Set(['e2e_tampered', 'e2e_wrong_sender', 'e2e_key_not_shared']);

/** What a reader is told about a message that cannot be decrypted, by code. */
const REASONS = /** @type {Record<string, string>} */ ({
  e2e_key_not_shared: 'key not shared with you yet',
  e2e_locked: 'unlock your E2E key',
  e2e_tampered: 'tampered — could not verify',
  e2e_wrong_sender: 'not from who it says',
  e2e_unknown_version: 'made by a newer client; this page cannot read it',
  e2e_malformed: 'malformed — could not read it',
  e2e_key_changed: "the sender's key changed — acknowledge it first",
  key_changed: "the sender's key changed — acknowledge it first",
  e2e_no_keys: 'the sender has no E2E key',
});

/**
 * The stable code of an error from web/pkg or the server (`e2e_tampered`, …), if it has one.
 * @param {unknown} err
 * @returns {string | undefined}
 */
export function codeOf(err) {
  return err instanceof api.ApiError ? err.code : e2e.errorCode(err);
}

/** @param {unknown} err */
function describe(err) {
  return err instanceof Error ? err.message : String(err);
}

/** Thrown when an encrypted room is written to while the E2E key is locked. */
export class LockedError extends Error {
  constructor() {
    super('Unlock your E2E key to write in this room.');
  }
}

/** The room's current key was shared with other people than its members now. */
class StaleKeyError extends Error {
  constructor() {
    super('The room key does not match the members: a new one is needed.');
  }
}

/** The encrypted rooms of this tab. */
export class E2eRooms {
  /** @param {ChatState} state */
  constructor(state) {
    this.state = state;
    /** @type {Map<number, RoomE2e>} */
    this.rooms = new Map();
    /** @type {Map<number, Promise<void>>} per room: the load under way */
    this.loading = new Map();
    /** @type {Set<number>} rooms to load again once the current load ends */
    this.again = new Set();
    /** @type {Map<number, Promise<PeerKeys>>} peers' keys, observed once per room load */
    this.peers = new Map();
    /** @type {Map<number, PeerKeys>} the settled ones, for decrypting synchronously */
    this.settledPeers = new Map();
    /** @type {Map<number, {envelope: string, result: Decrypted}>} by message id */
    this.decrypted = new Map();
    /** @type {Map<number, {userId: number, keys: e2e.IdentityKeys}>} changed keys to acknowledge, by user */
    this.changedKeys = new Map();
    /** @type {Set<number>} authors looked up again after a message of theirs failed (once per load) */
    this.rechecked = new Set();
  }

  /** @param {number} roomId */
  isEncrypted(roomId) {
    return this.state.rooms.get(roomId)?.encrypted === true;
  }

  /** @param {number} roomId @returns {RoomE2e | undefined} */
  info(roomId) {
    return this.rooms.get(roomId);
  }

  /** Forgets everything (the session ended, or the identity was locked). */
  reset() {
    this.rooms.clear();
    this.peers.clear();
    this.settledPeers.clear();
    this.decrypted.clear();
    this.changedKeys.clear();
    this.rechecked.clear();
    this.again.clear();
  }

  /**
   * The identity was unlocked (or replaced): rooms loaded before are loaded again.
   */
  unlocked() {
    const loaded = [...this.rooms.keys()];
    this.reset();
    for (const roomId of loaded) void this.refresh(roomId);
  }

  /**
   * Loads a room's keys (again): opens new shares, makes a new key when needed. Loads of one
   * room never overlap; a request during a load runs once after it.
   * @param {number} roomId
   * @returns {Promise<void>}
   */
  refresh(roomId) {
    const running = this.loading.get(roomId);
    if (running) {
      this.again.add(roomId);
      return running;
    }
    const run = (async () => {
      try {
        do {
          this.again.delete(roomId);
          await this.load(roomId);
        } while (this.again.has(roomId));
      } finally {
        this.loading.delete(roomId);
      }
    })();
    this.loading.set(roomId, run);
    return run;
  }

  /**
   * A realtime event about a room's membership or keys: a room loaded here loads again.
   * @param {number} roomId
   */
  roomChanged(roomId) {
    if (!this.isEncrypted(roomId)) return;
    if (this.rooms.has(roomId) || this.state.openRoomId === roomId) void this.refresh(roomId);
  }

  /**
   * @param {number} roomId
   * @param {Partial<RoomE2e>} change
   */
  set(roomId, change) {
    const old = this.rooms.get(roomId) ?? { status: 'loading', error: null, epoch: 0, keyId: null, members: [], changes: [], refused: [], unexplained: [] };
    this.rooms.set(roomId, { ...old, ...change });
    this.state.changed();
  }

  /** @param {number} roomId */
  async load(roomId) {
    if (!this.isEncrypted(roomId)) return;
    if (!e2e.isUnlocked()) {
      this.set(roomId, { status: 'locked', error: null });
      return;
    }
    if (!this.rooms.has(roomId)) this.set(roomId, { status: 'loading' });
    // Each load looks at the members' keys afresh (a key changed meanwhile must show).
    this.peers.clear();
    this.rechecked.clear();
    try {
      for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
        const keys = await api.roomKeys(roomId);
        const refused = await this.openShares(roomId, keys);
        // Listed as members without a change that shows them joining: no key goes to them.
        const explained = new Set(replayMembers(keys.changes, Number.MAX_SAFE_INTEGER));
        const unexplained = keys.members.filter((id) => !explained.has(id));
        const current = keys.keys.find((k) => k.key_id === keys.key_id);
        const usable = !!keys.key_id && !!current && current.epoch >= keys.epoch && wasm.roomHasKey(String(roomId), keys.key_id);
        if (usable) {
          this.forgetFailures(roomId);
          this.set(roomId, { status: 'ready', error: null, epoch: keys.epoch, keyId: keys.key_id ? keyLabel(keys.key_id) : null, members: keys.members, changes: keys.changes, refused, unexplained });
          return;
        }
        // No key yet, or none since the latest membership change: this member makes one.
        this.set(roomId, { epoch: keys.epoch, members: keys.members, changes: keys.changes, refused, unexplained });
        if (unexplained.length) {
          throw new Error(`no new room key while the server lists ${unexplained.map((id) => this.nameOf(id)).join(', ')} as a member without a membership change that shows them joining.`);
        }
        try {
          await this.makeKey(roomId, keys.epoch, keys.members);
        } catch (err) {
          // Somebody joined or left meanwhile: look again (below), with the new members.
          if (codeOf(err) !== 'e2e_key_members_mismatch') throw err;
        }
      }
      throw new Error('The membership kept changing while a new room key was being shared; it will be tried again on the next change.');
    } catch (err) {
      if (!e2e.isUnlocked()) {
        this.set(roomId, { status: 'locked', error: null });
        return;
      }
      this.set(roomId, { status: 'error', error: describe(err) });
    }
  }

  /**
   * Opens every share not in this page's ring yet, each checked against its distributor's
   * keys (as pinned) and the room's members at its epoch. Returns why some were refused.
   * @param {number} roomId
   * @param {import('./api.js').RoomKeys} keys
   * @returns {Promise<string[]>}
   */
  async openShares(roomId, keys) {
    /** @type {string[]} */
    const refused = [];
    for (const share of keys.keys) {
      if (wasm.roomHasKey(String(roomId), share.key_id)) continue;
      const from = this.nameOf(share.distributor_id);
      const distributor = await this.peer(share.distributor_id);
      if (!distributor.keys || distributor.verdict.startsWith('changed')) {
        refused.push(`A room key from ${from} was not opened: ${distributor.keys ? `${from}'s key changed; acknowledge it first` : `${from} has no E2E key`}.`);
        continue;
      }
      try {
        wasm.roomAddShare(
          String(roomId),
          String(this.state.me.id),
          share.share,
          JSON.stringify(memberJson(share.distributor_id, distributor.keys)),
          JSON.stringify(membersAt(keys, share.epoch)),
        );
      } catch (err) {
        refused.push(`A room key from ${from} was refused (${codeOf(err) ?? describe(err)}).`);
      }
    }
    return refused;
  }

  /**
   * Makes a room key for `members` and publishes their shares.
   * @param {number} roomId
   * @param {number} epoch
   * @param {number[]} members
   */
  async makeKey(roomId, epoch, members) {
    const entries = [];
    for (const id of members) {
      const peer = await this.peer(id);
      const name = this.nameOf(id);
      if (!peer.keys || !peer.keys.agreement_key) {
        throw new Error(`${name} has not set up an E2E key yet: the room can get a key once everyone has one.`);
      }
      if (peer.verdict.startsWith('changed')) {
        throw new Error(`${name}'s E2E key changed. Acknowledge it before a new room key is shared with them.`);
      }
      entries.push(memberJson(id, peer.keys));
    }
    const made = JSON.parse(wasm.roomCreateKey(String(roomId), String(this.state.me.id), JSON.stringify(entries)));
    await api.putRoomKey(roomId, {
      key_id: made.key_id,
      epoch,
      shares: made.shares.map((/** @type {{user_id: number | string, share: string}} */ s) => ({ user_id: Number(s.user_id), share: s.share })),
    });
  }

  /**
   * A user's published keys, observed through the trust store (my own come from the unlocked
   * identity). A changed key is recorded for the user to acknowledge, never used.
   * @param {number} userId
   * @returns {Promise<PeerKeys>}
   */
  peer(userId) {
    let found = this.peers.get(userId);
    if (!found) {
      found = this.observe(userId);
      this.peers.set(userId, found);
      found.then(
        (p) => this.settledPeers.set(userId, p),
        () => this.peers.delete(userId),
      );
    }
    return found;
  }

  /** @param {number} userId @returns {Promise<PeerKeys>} */
  async observe(userId) {
    if (userId === this.state.me.id) return { verdict: 'matches', keys: JSON.parse(e2e.sotto.publicKeys()) };
    try {
      const observed = await e2e.observePeer(userId);
      if (observed.verdict.startsWith('changed')) {
        this.changedKeys.set(userId, { userId, keys: observed.keys });
        this.state.changed();
      } else {
        this.changedKeys.delete(userId);
      }
      return { verdict: observed.verdict, keys: observed.published };
    } catch (err) {
      if (codeOf(err) === 'e2e_not_set_up') return { verdict: 'missing', keys: null };
      throw err;
    }
  }

  /**
   * The user acknowledged a changed key: it is pinned, and the rooms load again.
   * @param {number} userId
   */
  async acknowledge(userId) {
    const change = this.changedKeys.get(userId);
    if (!change) return;
    await e2e.acknowledgeChange(userId, change.keys);
    this.changedKeys.delete(userId);
    this.peers.delete(userId);
    this.settledPeers.delete(userId);
    for (const [id, entry] of this.decrypted) {
      if (!entry.result.ok) this.decrypted.delete(id);
    }
    for (const roomId of this.rooms.keys()) void this.refresh(roomId);
  }

  /** @param {number} userId */
  nameOf(userId) {
    if (userId === this.state.me.id) return this.state.me.username;
    return this.state.users.get(userId)?.username ?? `user ${userId}`;
  }

  /** Failed decryptions in a room are tried again (new keys arrived). @param {number} roomId */
  forgetFailures(roomId) {
    for (const m of this.state.messages.get(roomId) ?? []) {
      const entry = this.decrypted.get(m.id);
      if (entry && !entry.result.ok) this.decrypted.delete(m.id);
    }
  }

  /**
   * A stored message's decryption, or null while the author's keys are being looked up (the
   * state changes when they arrive). Results are kept per message while its envelope is the
   * same; failures are tried again when the room's keys change.
   * @param {Message} msg
   * @returns {Decrypted | null}
   */
  decrypt(msg) {
    if (msg.body.type !== 'encrypted') return null;
    const envelope = msg.body.envelope;
    const cached = this.decrypted.get(msg.id);
    if (cached && cached.envelope === envelope) return cached.result;
    if (!e2e.isUnlocked()) return failure('e2e_locked');
    const author = this.settledPeers.get(msg.author_id);
    if (!author) {
      this.peer(msg.author_id).then(
        () => this.state.changed(),
        () => {},
      );
      return null;
    }
    /** @type {Decrypted} */
    let result;
    if (!author.keys) {
      result = failure('e2e_no_keys');
    } else if (author.verdict.startsWith('changed')) {
      result = failure('e2e_key_changed');
    } else {
      try {
        const opened = JSON.parse(wasm.roomDecrypt(String(msg.room_id), envelope, JSON.stringify(memberJson(msg.author_id, author.keys))));
        const content = typeof opened.content === 'string' ? JSON.parse(opened.content) : opened.content;
        result = { ok: true, keyId: keyLabel(String(opened.key_id)), content: content ?? {} };
      } catch (err) {
        result = failure(codeOf(err) ?? 'e2e_malformed');
      }
    }
    // A signature that does not verify, or a key never shared, can mean the author's key
    // changed since it was looked up: look once more before saying so.
    if (!result.ok && RECHECK.has(result.code) && !this.rechecked.has(msg.author_id)) {
      this.rechecked.add(msg.author_id);
      this.peers.delete(msg.author_id);
      this.settledPeers.delete(msg.author_id);
      this.peer(msg.author_id).then(
        () => this.state.changed(),
        () => {},
      );
      return null;
    }
    // A locked identity is not a property of the message: asked again once unlocked.
    if (result.ok || result.code !== 'e2e_locked') this.decrypted.set(msg.id, { envelope, result });
    return result;
  }

  /**
   * Encrypts `content` under the room's current key, making or fetching one first if needed.
   * @param {number} roomId
   * @param {E2eContent} content
   */
  async encrypt(roomId, content) {
    if (!e2e.isUnlocked()) throw new LockedError();
    let info = this.rooms.get(roomId);
    if (!info || info.status !== 'ready' || !info.keyId) {
      await this.refresh(roomId);
      info = this.rooms.get(roomId);
    }
    if (!info || info.status === 'locked') throw new LockedError();
    if (info.status !== 'ready' || !info.keyId) throw new Error(`Cannot send: ${info.error ?? 'this room has no key yet.'}`);
    try {
      return wasm.roomEncrypt(String(roomId), info.keyId, String(this.state.me.id), JSON.stringify(content), JSON.stringify(info.members));
    } catch (err) {
      // The key was shared with other people than the members now: never write under it.
      if (codeOf(err) === 'e2e_key_members_mismatch') throw new StaleKeyError();
      throw err;
    }
  }

  /**
   * Encrypts and writes: `write(envelope)` sends or edits. When the server answers that the
   * room's key is stale (a membership change), a new key is made and it is tried again.
   * @param {number} roomId
   * @param {E2eContent} content
   * @param {(envelope: string) => Promise<Message>} write
   * @returns {Promise<Message>}
   */
  async write(roomId, content, write) {
    for (let attempt = 1; ; attempt++) {
      try {
        const envelope = await this.encrypt(roomId, content);
        const msg = await write(envelope);
        // The page wrote it, so it knows what it says without decrypting it again.
        const keyId = keyLabel(wasm.roomEnvelopeKeyId(envelope));
        this.decrypted.set(msg.id, { envelope, result: { ok: true, keyId, content } });
        return msg;
      } catch (err) {
        if (!(err instanceof StaleKeyError) && codeOf(err) !== 'e2e_room_key_stale') throw err;
        if (attempt >= ATTEMPTS) throw new Error('Cannot send: the room key does not match its members, and no new one could be made.');
        await this.refresh(roomId);
      }
    }
  }

  /**
   * Sends a text message into an encrypted room.
   * @param {number} roomId
   * @param {string} text
   */
  sendText(roomId, text) {
    return this.write(roomId, { text }, (envelope) => api.sendEnvelope(roomId, envelope));
  }

  /**
   * Replaces the text of one's own encrypted message (its file, if any, stays).
   * @param {Message} msg
   * @param {string} text
   */
  editText(msg, text) {
    const before = this.decrypt(msg);
    const file = before && before.ok ? before.content.file : undefined;
    return this.write(msg.room_id, file ? { file, text } : { text }, (envelope) => api.editMessage(msg.id, { type: 'encrypted', envelope }));
  }

  /**
   * Encrypts a file with its own key, for `upload` (which sends the ciphertext declared
   * encrypted), then sends the encrypted message that carries the key.
   * @param {number} roomId
   * @param {File} file
   * @param {(ciphertext: File) => Promise<import('./api.js').UploadInfo>} upload
   */
  async sendFile(roomId, file, upload) {
    if (!e2e.isUnlocked()) throw new LockedError();
    const sealed = wasm.fileEncrypt(new Uint8Array(await file.arrayBuffer()));
    /** @type {Omit<E2eFile, 'upload_id'>} */
    let opening;
    /** @type {Uint8Array} */
    let ciphertext;
    try {
      opening = { key: sealed.key, nonce: sealed.nonce, sha256: sealed.sha256, name: file.name, type: file.type, size: file.size };
      ciphertext = sealed.ciphertext;
    } finally {
      sealed.free();
    }
    // The server sees a name and type that say nothing.
    const info = await upload(new File([/** @type {Uint8Array<ArrayBuffer>} */ (ciphertext)], 'encrypted', { type: 'application/octet-stream' }));
    /** @type {E2eFile} */
    const carried = { ...opening, upload_id: info.id };
    return this.write(roomId, { file: carried }, (envelope) => api.sendEnvelope(roomId, envelope, info.id));
  }

  /**
   * Downloads an encrypted file and decrypts it in the page. Only raster images keep their
   * type (for a preview); anything else is an `application/octet-stream` download.
   * @param {E2eFile} file
   * @returns {Promise<Blob>}
   */
  async openFile(file) {
    const res = await fetch(api.uploadUrl(file.upload_id), { credentials: 'same-origin' });
    if (!res.ok) throw new Error(`The file could not be downloaded (${res.status}).`);
    const ciphertext = new Uint8Array(await res.arrayBuffer());
    const plain = wasm.fileDecrypt(ciphertext, file.key, file.nonce, file.sha256);
    return new Blob([/** @type {Uint8Array<ArrayBuffer>} */ (plain)], { type: PREVIEWABLE.has(file.type) ? file.type : 'application/octet-stream' });
  }

  /**
   * Searches what this tab has decrypted in `roomIds` (the rooms the server did not search):
   * messages whose text or file name holds every word, newest first.
   * @param {string} query
   * @param {Iterable<number>} roomIds
   * @returns {{msg: Message, text: string}[]}
   */
  searchLocal(query, roomIds) {
    const words = query.toLowerCase().split(/\s+/).filter((w) => w.length > 0);
    if (!words.length) return [];
    /** @type {{msg: Message, text: string}[]} */
    const hits = [];
    for (const roomId of roomIds) {
      for (const msg of this.state.messages.get(roomId) ?? []) {
        const d = this.decrypted.get(msg.id)?.result;
        if (!d || !d.ok) continue;
        const text = [d.content.text ?? '', d.content.file?.name ?? ''].filter((t) => t).join(' ');
        const lower = text.toLowerCase();
        if (words.every((w) => lower.includes(w))) hits.push({ msg, text });
      }
    }
    return hits.sort((a, b) => b.msg.id - a.msg.id);
  }
}

/**
 * @param {string} code
 * @returns {Decrypted}
 */
function failure(code) {
  return { ok: false, code, reason: REASONS[code] ?? code };
}

/**
 * A member as web/pkg takes it: the ids and keys the room crypto checks.
 * @param {number} userId
 * @param {PublishedKeys} keys
 */
function memberJson(userId, keys) {
  return {
    user_id: userId,
    curve25519: keys.curve25519,
    ed25519: keys.ed25519,
    agreement_key: keys.agreement_key ?? '',
    agreement_signature: keys.agreement_signature ?? '',
  };
}

/**
 * The room's members at `epoch`, replayed from its membership changes: a share is opened only
 * if its recipients are exactly these (a member the server lists without a change that shows
 * them joining is not among them, so keys made before it stay readable and none made for it
 * are accepted).
 * @param {import('./api.js').RoomKeys} keys
 * @param {number} epoch
 * @returns {number[]}
 */
export function membersAt(keys, epoch) {
  return replayMembers(keys.changes, epoch);
}

/**
 * The members after every change up to `epoch`, ascending.
 * @param {MembershipChange[]} changes
 * @param {number} epoch
 * @returns {number[]}
 */
function replayMembers(changes, epoch) {
  const members = new Set();
  for (const c of [...changes].sort((a, b) => a.epoch - b.epoch)) {
    if (c.epoch > epoch) break;
    if (c.kind === 'created' || c.kind === 'added') members.add(c.user_id);
    else members.delete(c.user_id);
  }
  return [...members].sort((a, b) => a - b);
}

/**
 * A key id as shown (`data-key-id`, titles, the status line): unpadded base64, as the server
 * answers it (web/pkg writes it padded).
 * @param {string} keyId
 */
export function keyLabel(keyId) {
  return keyId.replace(/=+$/, '');
}
