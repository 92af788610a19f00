// "Remember on this device": the unlocked identity's storage key (`deviceKey()` of web/pkg),
// wrapped by a non-extractable AES-GCM-256 WebCrypto key, in IndexedDB. The wrapping key is
// stored as a CryptoKey object, so the browser keeps its bytes out of reach of any script,
// this page's included; what a copy of the profile yields is useless without the browser's
// own key store. One record per user; nothing else of Sotto's is ever put in IndexedDB.
//
// The database exists only while a record does: a lookup never creates it (so "nothing is
// stored" stays exactly true for a user who did not tick the box), and forgetting the last
// record deletes it.

/** The IndexedDB database and its one object store. */
const DB_NAME = 'sotto-device';
const STORE = 'remembered-keys';

/**
 * A stored record: the wrapping key, the IV and the AES-GCM ciphertext of the device key,
 * whose additional data is the user id (a record copied to another user's slot fails).
 * @typedef {{userId: number, wrappingKey: CryptoKey, iv: Uint8Array<ArrayBuffer>, wrapped: ArrayBuffer}} DeviceRecord
 */

/**
 * Wraps an IndexedDB request in a promise.
 * @template T
 * @param {IDBRequest<T>} request
 * @returns {Promise<T>}
 */
function settle(request) {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

/** Whether the database exists, without creating it. */
async function databaseExists() {
  if (typeof indexedDB.databases !== 'function') return true;
  return (await indexedDB.databases()).some((d) => d.name === DB_NAME);
}

/** Opens (creating if needed) the database. @returns {Promise<IDBDatabase>} */
function openDatabase() {
  const request = indexedDB.open(DB_NAME, 1);
  request.onupgradeneeded = () => {
    request.result.createObjectStore(STORE, { keyPath: 'userId' });
  };
  return settle(request);
}

/**
 * Runs one request against the store in its own transaction.
 * @template T
 * @param {IDBDatabase} db
 * @param {IDBTransactionMode} mode
 * @param {(store: IDBObjectStore) => IDBRequest<T>} action
 * @returns {Promise<T>}
 */
async function inStore(db, mode, action) {
  const tx = db.transaction(STORE, mode);
  const result = await settle(action(tx.objectStore(STORE)));
  await new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve(undefined);
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error);
  });
  return result;
}

/** The additional data that binds a wrapped key to its user. @param {number} userId */
function boundTo(userId) {
  return new TextEncoder().encode(`sotto device key v1 user ${userId}`);
}

/**
 * Wraps `deviceKey` under a fresh non-extractable key and stores it for `userId`, replacing
 * any earlier record of that user.
 * @param {number} userId
 * @param {Uint8Array<ArrayBuffer>} deviceKey
 */
export async function remember(userId, deviceKey) {
  const wrappingKey = await crypto.subtle.generateKey({ name: 'AES-GCM', length: 256 }, false, ['encrypt', 'decrypt']);
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const wrapped = await crypto.subtle.encrypt({ name: 'AES-GCM', iv, additionalData: boundTo(userId) }, wrappingKey, deviceKey);
  /** @type {DeviceRecord} */
  const record = { userId, wrappingKey, iv, wrapped };
  const db = await openDatabase();
  try {
    await inStore(db, 'readwrite', (store) => store.put(record));
  } finally {
    db.close();
  }
}

/**
 * The remembered device key of `userId`, or null when there is none. Throws when a record
 * exists but cannot be opened (the caller forgets it).
 * @param {number} userId
 * @returns {Promise<Uint8Array | null>}
 */
export async function recall(userId) {
  if (!(await databaseExists())) return null;
  const db = await openDatabase();
  /** @type {DeviceRecord | undefined} */
  let record;
  try {
    record = await inStore(db, 'readonly', (store) => store.get(userId));
  } finally {
    db.close();
  }
  if (!record) return null;
  const plain = await crypto.subtle.decrypt(
    { name: 'AES-GCM', iv: record.iv, additionalData: boundTo(userId) },
    record.wrappingKey,
    record.wrapped,
  );
  return new Uint8Array(plain);
}

/** Whether a record exists for `userId`. @param {number} userId */
export async function isRemembered(userId) {
  if (!(await databaseExists())) return false;
  const db = await openDatabase();
  try {
    return (await inStore(db, 'readonly', (store) => store.count(userId))) > 0;
  } finally {
    db.close();
  }
}

/**
 * Forgets `userId`'s record; deletes the database once no record is left.
 * @param {number} userId
 */
export async function forget(userId) {
  if (!(await databaseExists())) return;
  const db = await openDatabase();
  let left = 0;
  try {
    await inStore(db, 'readwrite', (store) => store.delete(userId));
    left = await inStore(db, 'readonly', (store) => store.count());
  } finally {
    db.close();
  }
  if (left === 0) await settle(indexedDB.deleteDatabase(DB_NAME));
}
