// Off the record: the conversation state of each 1:1 DM, the relay's binary frames (channel
// 1) and the OTR messages of this tab. OTR messages and keys live only in this tab's memory
// (and the wasm registry): never in localStorage, sessionStorage or IndexedDB, so a reload
// removes them.

import { ApiError } from './api.js';
import { observePeer, sotto } from './e2e.js';

/** The relay channel of OTR packets (sotto_api::otr::CHANNEL). */
const CHANNEL = 1;

/**
 * @typedef {{id: string, mine: boolean, text: string, at: number, delivered: boolean}} OtrMessage
 */
/**
 * @typedef {{state: string, reason: string | null, invitedBy: number | null, error: string | null,
 *   refusal: string | null, messages: OtrMessage[], endedUnderneath: boolean}} OtrRoom
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
   */
  constructor(me, sendBinary, changed) {
    this.me = me;
    this.sendBinary = sendBinary;
    this.changed = changed;
    /** @type {Map<number, OtrRoom>} */
    this.rooms = new Map();
    /** @type {Map<number, number>} the peer of each opened DM */
    this.peers = new Map();
    /** @type {Map<number, Promise<void>>} per-room queue: packets are handled in order */
    this.queues = new Map();
  }

  /** @param {number} roomId @returns {OtrRoom} */
  room(roomId) {
    let r = this.rooms.get(roomId);
    if (!r) {
      r = { state: 'not_started', reason: null, invitedBy: null, error: null, refusal: null, messages: [], endedUnderneath: false };
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
   * Opens the conversation with the DM's peer, pinning the peer's keys first.
   * @param {number} roomId
   * @param {number} peerId
   */
  async open(roomId, peerId) {
    if (this.peers.get(roomId) === peerId) return;
    let verdict;
    try {
      verdict = await observePeer(peerId);
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) {
        throw new Error('The other person has not set up an E2E key yet.');
      }
      throw err;
    }
    if (verdict.startsWith('changed')) {
      throw new Error('The safety number of this person changed: OTR is blocked until you acknowledge it.');
    }
    sotto.otrOpen(String(roomId), String(this.me), String(peerId));
    this.peers.set(roomId, peerId);
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
      } else if (e.type === 'delivered') {
        const m = r.messages.find((x) => x.id === `out-${e.id}`);
        if (m) m.delivered = true;
      } else if (e.type === 'state') {
        r.reason = e.reason ?? null;
      }
    }
    const before = r.state;
    r.state = sotto.otrState(String(roomId));
    if (before === 'established' && r.state !== 'established') r.endedUnderneath = true;
    r.invitedBy = r.state === 'invited' ? (peer ?? null) : null;
    this.changed();
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
      this.room(roomId).error = null;
      this.room(roomId).refusal = null;
      await this.open(roomId, peerId);
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
    return this.enqueue(roomId, async () => this.apply(roomId, sotto.otrAccept(String(roomId))));
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

  /**
   * A binary frame from the relay.
   * @param {Uint8Array} frame
   */
  receiveFrame(frame) {
    const f = decodeFrame(frame);
    if (!f || f.channel !== CHANNEL) return;
    const payload = f.payload.slice();
    void this.enqueue(f.roomId, async () => {
      await this.open(f.roomId, f.fromUser);
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
