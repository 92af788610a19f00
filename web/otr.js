// Off the record: the conversation state of each 1:1 DM, the relay's binary frames (channel
// 1), the peer's key (pinned, verified, changed) and the OTR messages and files of this tab.
// OTR messages, files and keys live only in this tab's memory (and the wasm registry): never
// in localStorage, sessionStorage, IndexedDB or the Cache API, so a reload removes them.
// Files are shown through blob: URLs, revoked when their session ends.

import { ApiError } from './api.js';
import * as e2e from './e2e.js';

const { sotto } = e2e;

/** The relay channel of OTR packets (sotto_api::otr::CHANNEL). */
const CHANNEL = 1;
/** The relay-visible kind byte of an offer (sotto_api::otr::PacketKind::Offer). */
const KIND_OFFER = 1;
/** The largest file the OTR channel carries (sotto_crypto::otr::MAX_FILE_BYTES). */
export const MAX_OTR_FILE_BYTES = 4 * 1024 * 1024;
/** The largest file chunk in one packet (sotto_crypto::otr::MAX_CHUNK_BYTES). */
const MAX_CHUNK_BYTES = 32 * 1024;
/**
 * A generous bound on what a file-chunk packet adds to its data besides the name and media
 * type: the relay header (18), the Olm message (version, ratchet key, counter, padding, MAC)
 * and the chunk's own fields.
 */
const CHUNK_OVERHEAD_BYTES = 256;
/** Raster image types shown inline; anything else is only offered as a download. */
export const PREVIEWABLE = new Set(['image/png', 'image/jpeg', 'image/gif', 'image/webp']);

/**
 * A file sent or received off the record, held in this tab's memory.
 * @typedef {{name: string, mediaType: string, size: number, url: string | null, preview: boolean}} OtrFile
 */
/**
 * @typedef {{id: string, mine: boolean, text: string, at: number, delivered: boolean,
 *   file?: OtrFile}} OtrMessage
 */
/**
 * A peer key that differs from the pinned one and is not acknowledged yet.
 * @typedef {{keys: e2e.IdentityKeys, safetyNumber: string, wasVerified: boolean}} KeyChange
 */
/**
 * @typedef {{state: string, reason: string | null, invitedBy: number | null, error: string | null,
 *   refusal: string | null, messages: OtrMessage[], endedUnderneath: boolean,
 *   keyChange: KeyChange | null}} OtrRoom
 */

/**
 * Encodes a client → server ephemeral frame addressed to a user.
 * @param {number} roomId
 * @param {number} userId
 * @param {Uint8Array} payload
 */
function encodeFrame(roomId, userId, payload) {
  const out = new Uint8Array(1 + 1 + 8 + 8 + 1 + payload.length);
  const view = new DataView(out.buffer);
  view.setUint8(0, 1);
  view.setUint8(1, 0);
  view.setBigInt64(2, BigInt(roomId));
  view.setBigInt64(10, BigInt(userId));
  view.setUint8(18, CHANNEL);
  out.set(payload, 19);
  return out;
}

/**
 * Decodes a server → client ephemeral frame.
 * @param {Uint8Array} frame
 * @returns {{roomId: number, fromUser: number, channel: number, payload: Uint8Array} | null}
 */
function decodeFrame(frame) {
  if (frame.length < 1 + 8 + 8 + 1 + 1 || frame[0] !== 1) return null;
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  const roomId = Number(view.getBigInt64(1));
  const fromUser = Number(view.getBigInt64(9));
  const len = frame[17];
  const at = 18 + len;
  if (frame.length < at + 1) return null;
  return { roomId, fromUser, channel: frame[at], payload: frame.subarray(at + 1) };
}

export class OtrConversations {
  /**
   * @param {number} me
   * @param {(frame: Uint8Array) => boolean} sendBinary
   * @param {() => void} changed
   * @param {() => Record<string, unknown>} [settings] the public settings (`otr.max_frame_bytes`)
   */
  constructor(me, sendBinary, changed, settings = () => ({})) {
    this.me = me;
    this.sendBinary = sendBinary;
    this.changed = changed;
    this.settings = settings;
    /** @type {Map<number, OtrRoom>} */
    this.rooms = new Map();
    /** @type {Map<number, number>} the peer of each opened DM */
    this.peers = new Map();
    /** @type {Map<number, e2e.IdentityKeys>} the pinned keys of each opened DM's peer */
    this.peerKeys = new Map();
    /** @type {Map<number, Promise<void>>} per-room queue: packets are handled in order */
    this.queues = new Map();
  }

  /** @param {number} roomId @returns {OtrRoom} */
  room(roomId) {
    let r = this.rooms.get(roomId);
    if (!r) {
      r = {
        state: 'not_started',
        reason: null,
        invitedBy: null,
        error: null,
        refusal: null,
        messages: [],
        endedUnderneath: false,
        keyChange: null,
      };
      this.rooms.set(roomId, r);
    }
    return r;
  }

  /**
   * Runs `task` after the room's earlier tasks.
   * @param {number} roomId
   * @param {() => Promise<void>} task
   */
  enqueue(roomId, task) {
    const next = (this.queues.get(roomId) ?? Promise.resolve()).then(task).catch((err) => {
      this.room(roomId).error = err instanceof Error ? err.message : String(err);
      this.changed();
    });
    this.queues.set(roomId, next);
    return next;
  }

  /**
   * Looks the peer's keys up and compares them with the pin: a changed key is recorded (and
   * blocks Start OTR and Accept) until the user acknowledges it.
   * @param {number} roomId
   * @param {number} peerId
   */
  async checkPeer(roomId, peerId) {
    let observed;
    try {
      observed = await e2e.observePeer(peerId);
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) {
        throw new Error('The other person has not set up an E2E key yet.');
      }
      throw err;
    }
    const r = this.room(roomId);
    if (observed.verdict.startsWith('changed')) {
      r.keyChange = {
        keys: observed.keys,
        safetyNumber: e2e.safetyNumberWith(this.me, peerId, observed.keys),
        wasVerified: observed.verdict === 'changed_verified',
      };
    } else {
      r.keyChange = null;
      this.peerKeys.set(roomId, observed.keys);
    }
    if (observed.saveError) r.error = `Could not save the pinned key: ${observed.saveError.message}`;
    this.changed();
  }

  /**
   * Opens the conversation with the DM's peer, pinning the peer's keys first.
   * @param {number} roomId
   * @param {number} peerId
   */
  async open(roomId, peerId) {
    if (this.peers.get(roomId) === peerId) return;
    await this.checkPeer(roomId, peerId);
    sotto.otrOpen(String(roomId), String(this.me), String(peerId));
    this.peers.set(roomId, peerId);
    this.changed();
  }

  /**
   * The OTR panel opened: look at the peer's key now, so a changed safety number shows before
   * the user clicks anything.
   * @param {number} roomId
   * @param {number} peerId
   */
  review(roomId, peerId) {
    if (!e2e.isUnlocked()) return Promise.resolve();
    return this.enqueue(roomId, async () => {
      if (this.peers.get(roomId) === peerId) await this.checkPeer(roomId, peerId);
      else await this.open(roomId, peerId);
    });
  }

  /**
   * Refuses while the peer's changed key is not acknowledged.
   * @param {OtrRoom} r
   */
  requireTrustedPeer(r) {
    if (r.keyChange) {
      throw new Error('The safety number with this person changed. Compare it and acknowledge the change first.');
    }
  }

  /**
   * "Acknowledge": the user accepts the peer's new key (pinned again, not verified).
   * @param {number} roomId
   */
  acknowledgeChange(roomId) {
    return this.enqueue(roomId, async () => {
      const r = this.room(roomId);
      const peer = this.peers.get(roomId);
      if (!r.keyChange || peer === undefined) return;
      await e2e.acknowledgeChange(peer, r.keyChange.keys);
      this.peerKeys.set(roomId, r.keyChange.keys);
      r.keyChange = null;
      r.error = null;
      this.changed();
    });
  }

  /**
   * "Mark as verified": the user compared the safety number with the peer's.
   * @param {number} roomId
   */
  markVerified(roomId) {
    return this.enqueue(roomId, async () => {
      const peer = this.peers.get(roomId);
      const keys = this.peerKeys.get(roomId);
      if (peer === undefined || !keys) return;
      await e2e.markVerified(peer, keys);
      this.changed();
    });
  }

  /** "Clear verification". @param {number} roomId */
  clearVerified(roomId) {
    return this.enqueue(roomId, async () => {
      const peer = this.peers.get(roomId);
      if (peer === undefined) return;
      await e2e.clearVerified(peer);
      this.changed();
    });
  }

  /**
   * Whether the DM's peer is marked verified.
   * @param {number} roomId
   */
  isVerified(roomId) {
    const peer = this.peers.get(roomId);
    return peer !== undefined && !this.room(roomId).keyChange && e2e.isVerified(peer);
  }

  /**
   * Sends a step's packets and applies its events.
   * @param {number} roomId
   * @param {import('./pkg/sotto.js').OtrStep} step
   */
  apply(roomId, step) {
    const peer = this.peers.get(roomId);
    for (const p of step.packets) {
      if (peer !== undefined) this.sendBinary(encodeFrame(roomId, peer, p));
    }
    const r = this.room(roomId);
    for (const e of step.events) {
      if (e.type === 'invited') {
        r.invitedBy = peer ?? null;
      } else if (e.type === 'message') {
        r.messages.push({ id: `in-${e.id}`, mine: false, text: e.text, at: Date.now(), delivered: true });
      } else if (e.type === 'file') {
        const file = heldFile(e.name, e.mediaType, e.data);
        e.data.fill(0);
        r.messages.push({ id: `in-${e.id}`, mine: false, text: file.name, at: Date.now(), delivered: true, file });
      } else if (e.type === 'delivered') {
        const m = r.messages.find((x) => x.id === `out-${e.id}`);
        if (m) m.delivered = true;
      } else if (e.type === 'state') {
        r.reason = e.reason ?? null;
      }
    }
    const before = r.state;
    r.state = sotto.otrState(String(roomId));
    if (before === 'established' && r.state !== 'established') {
      r.endedUnderneath = true;
      this.releaseFiles(r);
    }
    r.invitedBy = r.state === 'invited' ? (peer ?? null) : null;
    this.changed();
  }

  /**
   * Revokes the blob: URLs of a room's OTR files: they live only as long as their session.
   * @param {OtrRoom} r
   */
  releaseFiles(r) {
    for (const m of r.messages) {
      if (m.file?.url) {
        URL.revokeObjectURL(m.file.url);
        m.file.url = null;
      }
    }
  }

  /**
   * The safety number with the DM's peer (60 digits), once the peer's keys are pinned.
   * @param {number} roomId
   * @returns {string | null}
   */
  safetyNumber(roomId) {
    const peer = this.peers.get(roomId);
    if (peer === undefined) return null;
    try {
      return sotto.safetyNumber(String(peer));
    } catch {
      return null;
    }
  }

  /**
   * "Start OTR" in a DM (after a lost session: Refresh Keys, which names it).
   * @param {number} roomId
   * @param {number} peerId
   */
  start(roomId, peerId) {
    return this.enqueue(roomId, async () => {
      const r = this.room(roomId);
      r.error = null;
      r.refusal = null;
      await this.open(roomId, peerId);
      // The directory may serve a new key since the conversation was opened (the peer reset
      // their E2E key): look again before every invitation.
      await this.checkPeer(roomId, peerId);
      this.requireTrustedPeer(r);
      const state = sotto.otrState(String(roomId));
      // A new invitation after nothing, a decline, a timeout or an End OTR asks the peer;
      // Refresh Keys after a lost session names it, so the peer's page re-keys by itself if it
      // still holds it.
      const fresh = ['not_started', 'declined', 'timed_out', 'ended'].includes(state);
      const step = fresh ? sotto.otrStart(String(roomId)) : sotto.otrRefresh(String(roomId));
      this.apply(roomId, step);
    });
  }

  /** @param {number} roomId */
  accept(roomId) {
    return this.enqueue(roomId, async () => {
      this.requireTrustedPeer(this.room(roomId));
      this.apply(roomId, sotto.otrAccept(String(roomId)));
    });
  }

  /** "Cancel": withdraw our invitation while the peer has not answered. @param {number} roomId */
  cancel(roomId) {
    return this.enqueue(roomId, async () => this.apply(roomId, sotto.otrCancel(String(roomId))));
  }

  /** @param {number} roomId */
  decline(roomId) {
    return this.enqueue(roomId, async () => this.apply(roomId, sotto.otrDecline(String(roomId))));
  }

  /** "Refresh Keys". @param {number} roomId */
  refresh(roomId) {
    return this.enqueue(roomId, async () => this.apply(roomId, sotto.otrRefresh(String(roomId))));
  }

  /** "End OTR". @param {number} roomId */
  end(roomId) {
    return this.enqueue(roomId, async () => {
      const r = this.room(roomId);
      this.apply(roomId, sotto.otrEnd(String(roomId)));
      r.endedUnderneath = false;
      this.changed();
    });
  }

  /**
   * Sends a text off the record; false when the session is not established.
   * @param {number} roomId
   * @param {string} text
   */
  sendText(roomId, text) {
    const r = this.room(roomId);
    if (r.state !== 'established') return false;
    const step = sotto.otrSendText(String(roomId), text);
    r.messages.push({ id: `out-${step.messageId}`, mine: true, text, at: Date.now(), delivered: false });
    this.apply(roomId, step);
    return true;
  }

  /** The server's limit on one OTR packet (`otr.max_frame_bytes`). */
  maxFrameBytes() {
    const value = Number(this.settings()['otr.max_frame_bytes']);
    return Number.isFinite(value) && value > 0 ? value : 65536;
  }

  /**
   * The largest file this tab can send off the record now (before its name's bytes): the
   * channel's cap, or less when the server's packet limit cannot carry a whole chunk.
   */
  fileLimit() {
    const maxFrame = this.maxFrameBytes();
    if (maxFrame >= MAX_CHUNK_BYTES + CHUNK_OVERHEAD_BYTES) return MAX_OTR_FILE_BYTES;
    return Math.max(0, maxFrame - CHUNK_OVERHEAD_BYTES);
  }

  /**
   * Sends a file off the record (the attach button and drag-and-drop call this while OTR is
   * established, so nothing reaches the stored upload endpoint). Rejects with a message for
   * the user when OTR is not established or the file is too large for the OTR channel or for
   * the server's `otr.max_frame_bytes`.
   * @param {number} roomId
   * @param {File} file
   * @returns {Promise<void>}
   */
  async sendFile(roomId, file) {
    if (this.room(roomId).state !== 'established') {
      throw new Error('Off the record is not established in this conversation.');
    }
    if (file.size > MAX_OTR_FILE_BYTES) {
      throw new Error(`"${file.name}" is too large to send off the record (at most ${MAX_OTR_FILE_BYTES / 1024 / 1024} MiB).`);
    }
    const name = file.name || 'file';
    const mediaType = file.type || 'application/octet-stream';
    const maxFrame = this.maxFrameBytes();
    const fieldBytes = new TextEncoder().encode(name + mediaType).length;
    const largestPacket = Math.min(file.size, MAX_CHUNK_BYTES) + fieldBytes + CHUNK_OVERHEAD_BYTES;
    if (largestPacket > maxFrame) {
      throw new Error(
        `"${name}" cannot be sent off the record: this server carries OTR packets of at most ${maxFrame} bytes (files up to ${Math.max(0, maxFrame - fieldBytes - CHUNK_OVERHEAD_BYTES)} bytes).`,
      );
    }
    const data = new Uint8Array(await file.arrayBuffer());
    /** @type {unknown} */
    let failure = null;
    await this.enqueue(roomId, async () => {
      try {
        const r = this.room(roomId);
        if (r.state !== 'established') throw new Error('Off the record ended before the file was sent.');
        const step = sotto.otrSendFile(String(roomId), name, mediaType, data);
        if (step.packets.some((/** @type {Uint8Array} */ p) => p.length > maxFrame)) {
          throw new Error(`"${name}" cannot be sent off the record: a packet would exceed the server's limit.`);
        }
        const held = heldFile(name, mediaType, data);
        r.messages.push({ id: `out-${step.messageId}`, mine: true, text: held.name, at: Date.now(), delivered: false, file: held });
        this.apply(roomId, step);
      } catch (err) {
        failure = err;
      } finally {
        data.fill(0);
      }
    });
    if (failure) throw failure;
  }

  /**
   * Ends every running OTR conversation of this tab (before the E2E identity is reset): an
   * encrypted End for established sessions, a cancel for pending invitations.
   */
  endAll() {
    for (const [roomId, r] of this.rooms) {
      const id = String(roomId);
      try {
        if (r.state === 'established') this.apply(roomId, sotto.otrEnd(id));
        else if (r.state === 'offered' || r.state === 'establishing') this.apply(roomId, sotto.otrCancel(id));
        else if (r.state === 'invited') this.apply(roomId, sotto.otrDecline(id));
      } catch {
        // The reset that follows destroys the session anyway.
      }
    }
  }

  /** Drops every conversation's keys and pins in this tab (after an identity reset). */
  forgetSessions() {
    for (const [roomId, r] of this.rooms) {
      sotto.otrDestroy(String(roomId));
      this.releaseFiles(r);
      r.state = 'not_started';
      r.invitedBy = null;
      r.keyChange = null;
    }
    this.peers.clear();
    this.peerKeys.clear();
    this.changed();
  }

  /**
   * A binary frame from the relay.
   * @param {Uint8Array} frame
   */
  receiveFrame(frame) {
    const f = decodeFrame(frame);
    if (!f || f.channel !== CHANNEL) return;
    const payload = f.payload.slice();
    void this.enqueue(f.roomId, async () => {
      const known = this.peers.get(f.roomId) === f.fromUser;
      await this.open(f.roomId, f.fromUser);
      // A new invitation: look at the peer's key again, so a changed one is flagged before
      // the user can accept (opening looked already).
      if (known && payload[1] === KIND_OFFER) await this.checkPeer(f.roomId, f.fromUser);
      this.apply(f.roomId, sotto.otrReceive(String(f.roomId), payload));
    });
  }

  /**
   * An `otr` notice of the relay.
   * @param {any} notice
   */
  receiveNotice(notice) {
    const roomId = Number(notice.room_id);
    if (!this.peers.has(roomId)) return;
    void this.enqueue(roomId, async () => {
      const id = String(roomId);
      const r = this.room(roomId);
      switch (notice.notice) {
        case 'refused':
          // The relay did not forward the packet. A refused offer leaves nothing to wait for:
          // drop it (and its keys) so the user can start again once the condition is met.
          r.refusal = String(notice.code);
          if (r.state === 'offered') {
            sotto.otrDestroy(id);
            this.peers.delete(roomId);
            r.state = sotto.otrState(id);
          }
          this.changed();
          break;
        case 'peer_disconnected':
          this.apply(roomId, sotto.otrPeerDisconnected(id));
          break;
        case 'ended_by_server':
          // The relay forgot the session (an admin turned OTR off, or a user was
          // deactivated): drop the keys here too and say why.
          this.apply(roomId, sotto.otrPeerDisconnected(id));
          r.reason = 'ended_by_server';
          this.changed();
          break;
        case 'expired':
          this.apply(roomId, sotto.otrExpire(id));
          break;
        case 'accepted_elsewhere':
          sotto.otrDestroy(id);
          // The next packet (a later invitation) opens a new conversation.
          this.peers.delete(roomId);
          r.state = 'not_started';
          r.invitedBy = null;
          this.changed();
          break;
        default:
          break;
      }
    });
  }

  /**
   * Whether the next Send in this room must not go out as an ordinary message yet (the
   * session ended underneath typed text); clears the guard, so a second Send is the user's
   * explicit choice.
   * @param {number} roomId
   */
  takeComposerGuard(roomId) {
    const r = this.rooms.get(roomId);
    if (!r || !r.endedUnderneath) return false;
    r.endedUnderneath = false;
    return true;
  }
}

/**
 * Keeps a file of an OTR conversation in tab memory, behind a blob: URL. Raster images keep
 * their type (to be previewed); anything else becomes an opaque download, so a file that
 * claims to be HTML can never be opened as a page of this origin.
 * @param {string} name
 * @param {string} mediaType
 * @param {Uint8Array} data
 * @returns {OtrFile}
 */
function heldFile(name, mediaType, data) {
  const preview = PREVIEWABLE.has(mediaType);
  const blob = new Blob([data.slice()], { type: preview ? mediaType : 'application/octet-stream' });
  return { name: name || 'file', mediaType, size: data.length, url: URL.createObjectURL(blob), preview };
}
