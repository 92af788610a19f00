// The user's E2E identity: set up (generated passphrase), unlock, peers' keys. Wraps the
// committed wasm package (web/pkg); secrets stay inside it. Nothing here touches
// localStorage, sessionStorage or IndexedDB.

import init, * as sotto from './pkg/sotto.js';
import * as api from './api.js';

/** @type {Promise<unknown> | null} */
let loading = null;

/** Loads the wasm package once. */
export function ready() {
  if (!loading) loading = init();
  return loading;
}

/** @param {Uint8Array} bytes */
function toBase64(bytes) {
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) {
    s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(s);
}

/** @param {string} text */
function fromBase64(text) {
  const s = atob(text);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

/** Whether the server holds an E2E identity for this user. */
export async function isSetUp() {
  return (await api.ownKeys()) !== null;
}

/** A fresh generated passphrase to show the user. */
export async function generatePassphrase() {
  await ready();
  return sotto.generatePassphrase();
}

/**
 * Creates the identity under `passphrase`, publishes it, and leaves it unlocked.
 * @param {number} userId
 * @param {string} passphrase
 */
export async function setUp(userId, passphrase) {
  await ready();
  const sealed = sotto.createIdentity(String(userId), passphrase, false);
  const keys = JSON.parse(sotto.publicKeys());
  await api.publishKeys({
    curve25519: keys.curve25519,
    ed25519: keys.ed25519,
    key_backup: toBase64(sealed.backup),
    trust_store: toBase64(sealed.trustStore),
  });
}

/**
 * Unlocks the identity from the server's backup with the user's passphrase.
 * @param {number} userId
 * @param {string} passphrase
 */
export async function unlock(userId, passphrase) {
  await ready();
  const keys = await api.ownKeys();
  if (!keys) throw new Error('No E2E key is set up yet.');
  sotto.unlock(String(userId), fromBase64(keys.key_backup), passphrase, fromBase64(keys.trust_store), false);
}

export function isUnlocked() {
  return loading !== null && sotto.isUnlocked();
}

/**
 * Looks up a peer's published keys and records them in the trust store. Returns the trust
 * store's verdict (`pinned_now`, `unchanged`, `changed`, …).
 * @param {number} peerId
 */
export async function observePeer(peerId) {
  const keys = await api.publicKeys(peerId);
  return sotto.observePeer(String(peerId), keys.curve25519, keys.ed25519);
}

export { sotto };
