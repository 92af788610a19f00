// The user's E2E identity: set up, unlock (with the passphrase or a remembered device key),
// change or reset the key, peers' keys and the trust store. Wraps the committed wasm package
// (web/pkg); secrets stay inside it. The only thing ever written to browser storage is the
// wrapped device key of "remember on this device" (web/device.js).

import init, * as sotto from './pkg/sotto.js';
import * as api from './api.js';
import * as device from './device.js';

/** @type {Promise<unknown> | null} */
let loading = null;

/**
 * The key backup (base64, as the server holds it) that this tab's identity and storage key
 * belong to; null when unknown (locked, or a change is being published). A trust store is
 * only saved while the server still holds this backup: a tab whose key was changed or reset
 * on another device must not overwrite the new trust store with one sealed under its old key.
 * @type {string | null}
 */
let backupInUse = null;

/** @typedef {{curve25519: string, ed25519: string}} IdentityKeys */

/** Loads the wasm package once. */
export function ready() {
  if (!loading) loading = init();
  return loading;
}

/** @param {Uint8Array} bytes */
export function toBase64(bytes) {
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) {
    s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(s);
}

/** @param {string} text */
export function fromBase64(text) {
  const s = atob(text);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

/**
 * The stable `code` of an error thrown by web/pkg, if any.
 * @param {unknown} err
 * @returns {string | undefined}
 */
export function errorCode(err) {
  if (err && typeof err === 'object' && 'code' in err && typeof err.code === 'string') return err.code;
  return undefined;
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
 * The strength of a custom passphrase: its estimated bits, and why it is refused (null when
 * it clears the floor).
 * @param {string} passphrase
 * @returns {Promise<{bits: number, refusal: string | null}>}
 */
export async function passphraseStrength(passphrase) {
  await ready();
  const bits = sotto.passphraseBits(passphrase);
  try {
    sotto.checkPassphrase(passphrase);
    return { bits, refusal: null };
  } catch (err) {
    return { bits, refusal: err instanceof Error ? err.message : String(err) };
  }
}

/**
 * This identity's public keys, with the room agreement key and its signature.
 * @returns {import('./api.js').PublishedKeys}
 */
function ownPublicKeys() {
  return JSON.parse(sotto.publicKeys());
}

/**
 * Publishes the unlocked identity's public keys with freshly sealed blobs.
 * @param {import('./pkg/sotto.js').SealedKeys} sealed
 */
async function publish(sealed) {
  await publishBlobs(sealed.backup, sealed.trustStore);
}

/**
 * Publishes the public keys (the room agreement key and its signature included) with the
 * sealed backup and trust store.
 * @param {Uint8Array} backup
 * @param {Uint8Array} trustStore
 */
async function publishBlobs(backup, trustStore) {
  const keys = ownPublicKeys();
  const keyBackup = toBase64(backup);
  await api.publishKeys({
    curve25519: keys.curve25519,
    ed25519: keys.ed25519,
    agreement_key: keys.agreement_key,
    agreement_signature: keys.agreement_signature,
    key_backup: keyBackup,
    trust_store: toBase64(trustStore),
  });
  backupInUse = keyBackup;
}

/**
 * After an unlock: the room agreement key is derived from the identity, so an identity from
 * before encrypted rooms has one too but never published it. Publishes it (with the backup
 * and trust store unchanged) when the server's entry lacks it or differs, else room keys could
 * never be shared with this user.
 * @param {import('./pkg/sotto.js').UnlockResult} outcome
 * @param {import('./api.js').OwnKeys} published
 */
async function publishAgreementKey(outcome, published) {
  outcome.free();
  const mine = ownPublicKeys();
  if (published.agreement_key === mine.agreement_key && published.agreement_signature === mine.agreement_signature) return;
  await publishBlobs(fromBase64(published.key_backup), fromBase64(published.trust_store));
}

/**
 * Creates the identity under `passphrase`, publishes it, and leaves it unlocked.
 * @param {number} userId
 * @param {string} passphrase
 */
export async function setUp(userId, passphrase) {
  await ready();
  backupInUse = null;
  await publish(sotto.createIdentity(String(userId), passphrase, false));
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
  /** @type {import('./pkg/sotto.js').UnlockResult} */
  let outcome;
  try {
    outcome = sotto.unlock(String(userId), fromBase64(keys.key_backup), passphrase, fromBase64(keys.trust_store), false);
  } catch (err) {
    if (errorCode(err) === 'wrong_passphrase') throw new Error('That is not your E2E key (wrong passphrase).');
    throw err;
  }
  backupInUse = keys.key_backup;
  await publishAgreementKey(outcome, keys);
}

export function isUnlocked() {
  if (loading === null) return false;
  try {
    return sotto.isUnlocked();
  } catch {
    // The wasm package is still loading: nothing can be unlocked yet.
    return false;
  }
}

// --- Remember on this device ------------------------------------------------------------------

/**
 * The outcome of unlocking from a remembered device key: `none` (nothing remembered), `unlocked`,
 * or `stale` (the record no longer opens the backup and was forgotten).
 * @typedef {'none' | 'unlocked' | 'stale'} RememberedOutcome
 */

/**
 * The silent unlock of this page's session (one per log-in: a page can end a session and
 * log in again, possibly as someone else).
 * @type {{userId: number, outcome: Promise<RememberedOutcome>} | null}
 */
let rememberedUnlock = null;

/**
 * Unlocks silently with this device's remembered key, once per log-in. A record that no
 * longer opens the key backup (the passphrase was changed or the key reset elsewhere) is
 * deleted.
 * @param {number} userId
 * @returns {Promise<RememberedOutcome>}
 */
export function unlockRemembered(userId) {
  if (rememberedUnlock?.userId !== userId) rememberedUnlock = { userId, outcome: tryRemembered(userId) };
  return rememberedUnlock.outcome;
}

/**
 * Waits for a silent unlock under way (the E2E panel must not offer a form meanwhile).
 * @returns {Promise<RememberedOutcome>}
 */
export async function rememberedUnlockSettled() {
  if (!rememberedUnlock) return 'none';
  try {
    return await rememberedUnlock.outcome;
  } catch {
    return 'none';
  }
}

/** @param {number} userId @returns {Promise<RememberedOutcome>} */
async function tryRemembered(userId) {
  /** @type {Uint8Array | null} */
  let key;
  try {
    key = await device.recall(userId);
  } catch {
    // The record exists but cannot be opened (a corrupted or foreign record).
    await device.forget(userId);
    return 'stale';
  }
  if (!key) return 'none';
  try {
    await ready();
    const keys = await api.ownKeys();
    if (!keys) {
      await device.forget(userId);
      return 'stale';
    }
    /** @type {import('./pkg/sotto.js').UnlockResult} */
    let outcome;
    try {
      outcome = sotto.unlockWithDeviceKey(String(userId), fromBase64(keys.key_backup), key, fromBase64(keys.trust_store));
    } catch (err) {
      const code = errorCode(err);
      if (code === 'wrong_passphrase' || code === 'trust_store_unreadable' || code === 'malformed_backup') {
        await device.forget(userId);
        return 'stale';
      }
      throw err;
    }
    backupInUse = keys.key_backup;
    await publishAgreementKey(outcome, keys);
    return 'unlocked';
  } finally {
    key.fill(0);
  }
}

/**
 * Remembers the unlocked identity on this device (replacing an older record).
 * @param {number} userId
 */
export async function rememberDevice(userId) {
  // A copy out of the wasm memory, so backed by its own ArrayBuffer.
  const key = /** @type {Uint8Array<ArrayBuffer>} */ (sotto.deviceKey());
  try {
    await device.remember(userId, key);
  } finally {
    key.fill(0);
  }
}

/** @param {number} userId */
export function forgetDevice(userId) {
  return device.forget(userId);
}

/** @param {number} userId */
export function isRemembered(userId) {
  return device.isRemembered(userId);
}

// --- Change and reset -------------------------------------------------------------------------

/** Thrown when the server's key backup is no longer the one this tab unlocked. */
export class StaleKeyError extends Error {
  constructor() {
    super('Your E2E key was changed or reset on another device. Reload the page and enter the new one.');
  }
}

/** Refuses when the server no longer holds the backup this tab's keys belong to. */
async function ensureCurrent() {
  const keys = await api.ownKeys();
  if (backupInUse === null || !keys || keys.key_backup !== backupInUse) throw new StaleKeyError();
}

/**
 * Changes the E2E passphrase (a new storage key; the identity stays, so safety numbers do not
 * change). Publishes the new blobs and re-remembers this device if it was remembered.
 * @param {number} userId
 * @param {string} passphrase
 */
export async function changeKey(userId, passphrase) {
  await ensureCurrent();
  const sealed = sotto.changePassphrase(passphrase, false);
  // From here the tab's storage key is the new one: until the server holds the new backup,
  // no trust store may be saved.
  backupInUse = null;
  await publish(sealed);
  if (await device.isRemembered(userId)) await rememberDevice(userId);
}

/**
 * Resets the E2E identity: new keys (peers see a changed safety number), a new storage key;
 * the trust store is kept. Publishes the new keys and re-remembers this device if it was.
 * The caller ends OTR sessions first (the reset destroys their keys).
 * @param {number} userId
 * @param {string} passphrase
 */
export async function resetKey(userId, passphrase) {
  await ensureCurrent();
  const sealed = sotto.resetIdentity(passphrase, false);
  backupInUse = null;
  await publish(sealed);
  if (await device.isRemembered(userId)) await rememberDevice(userId);
}

// --- Peers and the trust store ----------------------------------------------------------------

/** Seals the trust store and saves it on the server (pins and verified marks follow the user). */
export async function saveTrustStore() {
  await ensureCurrent();
  await api.saveTrustStore(toBase64(sotto.sealTrustStore()));
}

/**
 * Looks up a peer's published keys and records them in the trust store. Returns the trust
 * store's verdict (`pinned_now`, `matches`, `matches_verified`, `changed`, `changed_verified`),
 * the identity keys the directory served and everything it served (`published`: the room
 * agreement key too, which web/pkg checks against the Ed25519 key). A new pin is saved on the
 * server (`saveError` says if that failed).
 * @param {number} peerId
 * @returns {Promise<{verdict: string, keys: IdentityKeys, published: import('./api.js').PublishedKeys, saveError: Error | null}>}
 */
export async function observePeer(peerId) {
  const served = await api.publicKeys(peerId);
  const keys = { curve25519: served.curve25519, ed25519: served.ed25519 };
  const verdict = sotto.observePeer(String(peerId), keys.curve25519, keys.ed25519);
  // The pin holds in this tab either way; failing to save it only means a later page pins
  // again on first use, so it is reported rather than blocking OTR.
  /** @type {Error | null} */
  let saveError = null;
  if (verdict === 'pinned_now') {
    try {
      await saveTrustStore();
    } catch (err) {
      saveError = err instanceof Error ? err : new Error(String(err));
    }
  }
  return { verdict, keys, published: served, saveError };
}

/**
 * The safety number this user would share with `peerId` if the peer's keys were `keys` (for
 * showing a changed number before it is acknowledged).
 * @param {number} me
 * @param {number} peerId
 * @param {IdentityKeys} keys
 */
export function safetyNumberWith(me, peerId, keys) {
  const own = ownPublicKeys();
  const digits = sotto.safetyNumberOf(String(me), own.curve25519, own.ed25519, String(peerId), keys.curve25519, keys.ed25519);
  // Shown like the pinned one: 12 groups of 5.
  return digits.replace(/\s+/g, '').replace(/(\d{5})(?=\d)/g, '$1 ');
}

/**
 * The user acknowledged a peer's changed key: re-pin it (unverified) and save.
 * @param {number} peerId
 * @param {IdentityKeys} keys
 */
export async function acknowledgeChange(peerId, keys) {
  sotto.acknowledgeChange(String(peerId), keys.curve25519, keys.ed25519);
  await saveTrustStore();
}

/**
 * The user compared safety numbers and they matched.
 * @param {number} peerId
 * @param {IdentityKeys} keys
 */
export async function markVerified(peerId, keys) {
  sotto.markVerified(String(peerId), keys.curve25519, keys.ed25519);
  await saveTrustStore();
}

/** @param {number} peerId */
export async function clearVerified(peerId) {
  sotto.clearVerified(String(peerId));
  await saveTrustStore();
}

/** @param {number} peerId */
export function isVerified(peerId) {
  try {
    return sotto.isVerified(String(peerId));
  } catch {
    return false;
  }
}

/** Forgets the identity and every OTR session in this tab (the session ended). */
export function lock() {
  backupInUse = null;
  rememberedUnlock = null;
  if (isUnlocked()) sotto.lock();
}

export { sotto };
