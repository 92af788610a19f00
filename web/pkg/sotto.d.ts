/* tslint:disable */
/* eslint-disable */

/**
 * An encrypted file: the bytes to upload, and what the message must carry to open them.
 */
export class EncryptedFile {
    private constructor();
    free(): void;
    [Symbol.dispose](): void;
    /**
     * The bytes to upload.
     */
    readonly ciphertext: Uint8Array;
    /**
     * The file's key, standard base64 (goes into the encrypted message, nowhere else).
     */
    readonly key: string;
    /**
     * The STREAM nonce, standard base64.
     */
    readonly nonce: string;
    /**
     * SHA-256 of the ciphertext, standard base64.
     */
    readonly sha256: string;
}

/**
 * The outcome of an OTR call: packets for the relay and events to show.
 */
export class OtrStep {
    private constructor();
    free(): void;
    [Symbol.dispose](): void;
    /**
     * Events to show, in order: objects with a `type` of `"state"` (`state`, `reason`),
     * `"invited"` (`sessionId`, `refresh`), `"refresh_accepted"` (`sessionId`), `"message"`
     * (`id`, `text`), `"delivered"` (`id`) or `"file"` (`id`, `name`, `mediaType`, `data`).
     */
    readonly events: Array<any>;
    /**
     * For sends: the id of the message or file, which a later `"delivered"` event names.
     */
    readonly messageId: number | undefined;
    /**
     * Encoded packets (`Uint8Array`s) to send through the relay, in order.
     */
    readonly packets: Array<any>;
}

/**
 * What the server keeps for the user, always stored together: the key backup and the trust
 * store sealed under the backup's storage key.
 */
export class SealedKeys {
    private constructor();
    free(): void;
    [Symbol.dispose](): void;
    /**
     * The key backup (the identity sealed under the E2E passphrase).
     */
    readonly backup: Uint8Array;
    /**
     * The trust store sealed under the backup's storage key.
     */
    readonly trustStore: Uint8Array;
}

/**
 * What an unlock found out about the backup.
 */
export class UnlockResult {
    private constructor();
    free(): void;
    [Symbol.dispose](): void;
    /**
     * The backup's key-derivation parameters are weaker than today's defaults: re-seal it with
     * `changePassphrase`.
     */
    readonly needsRekey: boolean;
    /**
     * Set when the backup predates encrypted rooms: the identity got a room agreement key, and
     * these are the re-sealed backup bytes. Store them with the public keys (`publicKeys()`, now
     * with the agreement key) and the trust store (`PUT /api/v1/e2e/keys`).
     */
    readonly upgradedBackup: Uint8Array | undefined;
}

/**
 * The user acknowledges a peer's changed key: re-pin it (unverified).
 */
export function acknowledgeChange(user_id: string, curve25519: string, ed25519: string): void;

/**
 * Re-seals the identity under a new passphrase and a new storage key, and the trust store under
 * the new key. Store both returned blobs together.
 */
export function changePassphrase(new_passphrase: string, insecure_test_params: boolean): SealedKeys;

/**
 * Throws `weak_passphrase` if a custom passphrase is below the strength floor.
 */
export function checkPassphrase(passphrase: string): void;

/**
 * Removes the "verified" mark of a peer.
 */
export function clearVerified(user_id: string): void;

/**
 * Creates a new identity sealed under `passphrase` (generated, or custom above the floor) and
 * keeps it unlocked with an empty trust store. Returns both blobs for the server.
 */
export function createIdentity(owner_user_id: string, passphrase: string, insecure_test_params: boolean): SealedKeys;

/**
 * The unlocked identity's storage key, for "remember on this device": the page wraps it with a
 * non-extractable WebCrypto key and keeps only the wrapped form. It opens the server's key
 * backup without the passphrase until the passphrase changes or the identity is reset.
 */
export function deviceKey(): Uint8Array;

/**
 * Checks the ciphertext's hash, then decrypts it. Errors: `e2e_file_hash_mismatch`,
 * `e2e_tampered` (altered, reordered or truncated), `e2e_malformed`.
 */
export function fileDecrypt(ciphertext: Uint8Array | number[], key: string, nonce: string, sha256: string): Uint8Array;

/**
 * Encrypts a file under a fresh key (chunked STREAM, see sotto-crypto's `files`).
 */
export function fileEncrypt(bytes: Uint8Array | number[]): EncryptedFile;

/**
 * A generated E2E passphrase (100 bits, five groups of four characters).
 */
export function generatePassphrase(): string;

/**
 * Whether an identity is unlocked in this page.
 */
export function isUnlocked(): boolean;

/**
 * Whether the peer's pinned key is marked verified.
 */
export function isVerified(user_id: string): boolean;

/**
 * Forgets everything secret: identity, trust store, every OTR session and every room key ring
 * (keys zeroized).
 */
export function lock(): void;

/**
 * The user compared safety numbers with the peer and they matched.
 */
export function markVerified(user_id: string, curve25519: string, ed25519: string): void;

/**
 * Records the keys the directory serves for a peer. Returns `"pinned_now"`, `"matches"`,
 * `"matches_verified"`, `"changed"` or `"changed_verified"` (a verified key changed).
 */
export function observePeer(user_id: string, curve25519: string, ed25519: string): string;

/**
 * Accept the peer's invitation.
 */
export function otrAccept(room_id: string): OtrStep;

/**
 * Withdraw our invitation or abandon the handshake.
 */
export function otrCancel(room_id: string): OtrStep;

/**
 * Decline the peer's invitation.
 */
export function otrDecline(room_id: string): OtrStep;

/**
 * Drops a room's OTR conversation: its keys and any pending one-time key.
 */
export function otrDestroy(room_id: string): void;

/**
 * End OTR.
 */
export function otrEnd(room_id: string): OtrStep;

/**
 * The invitation timed out.
 */
export function otrExpire(room_id: string): OtrStep;

/**
 * Whether a room's OTR conversation holds any key material.
 */
export function otrHoldsKeys(room_id: string): boolean;

/**
 * How many one-time key secrets the in-memory OTR identity holds (0 unless a handshake waits).
 */
export function otrOneTimeKeyCount(): number;

/**
 * Opens (or returns the existing) OTR conversation of a DM room.
 */
export function otrOpen(room_id: string, local_user_id: string, peer_user_id: string): void;

/**
 * The relay reports that the peer's connection closed.
 */
export function otrPeerDisconnected(room_id: string): OtrStep;

/**
 * A packet from the relay for this room.
 */
export function otrReceive(room_id: string, packet: Uint8Array | number[]): OtrStep;

/**
 * Refresh Keys.
 */
export function otrRefresh(room_id: string): OtrStep;

/**
 * The answer to a packet for a room with no OTR conversation in this page (after a reload):
 * "lost session" for frames, nothing for other packets.
 */
export function otrReplyToUnknown(packet: Uint8Array | number[]): Uint8Array | undefined;

/**
 * Encrypts a small file (at most 4 MiB) as chunks.
 */
export function otrSendFile(room_id: string, name: string, media_type: string, data: Uint8Array | number[]): OtrStep;

/**
 * Encrypts a text message; `messageId` of the result names it in a later `"delivered"` event.
 */
export function otrSendText(room_id: string, text: string): OtrStep;

/**
 * The current session id of a room (32 hex digits), if any.
 */
export function otrSessionId(room_id: string): string | undefined;

/**
 * Start OTR: invite the peer.
 */
export function otrStart(room_id: string): OtrStep;

/**
 * The state of a room's OTR conversation: `"not_started"`, `"offered"`, `"invited"`,
 * `"establishing"`, `"established"`, `"ended"`, `"declined"`, `"timed_out"` or `"failed"`.
 */
export function otrState(room_id: string): string;

/**
 * The conservative strength estimate of a passphrase, in bits (for a strength meter).
 */
export function passphraseBits(passphrase: string): number;

/**
 * The public keys to publish, as JSON `{"curve25519", "ed25519", "agreement_key",
 * "agreement_signature"}` (unpadded base64). The agreement key is signed for the owner's user
 * id, so the owner id given at unlock must be the server's (decimal) user id.
 */
export function publicKeys(): string;

/**
 * Resets the E2E identity: new keys under `passphrase` and a new storage key (peers will see a
 * changed safety number; publish the new public keys). The trust store is kept and re-sealed.
 * Ends every OTR session.
 */
export function resetIdentity(passphrase: string, insecure_test_params: boolean): SealedKeys;

/**
 * Opens a share addressed to this user and adds its key to the room's ring. `distributorJson`
 * has the shape of a member of [`room_create_key`]; `expectedMembersJson` (an array of user
 * ids as numbers, or null) is the membership the page knows for the key's epoch: when given, the share's
 * recipients must equal it. Returns `{"key_id", "distributor_id", "recipients"}`.
 */
export function roomAddShare(room_id: string, local_user_id: string, share_b64: string, distributor_json: string, expected_members_json?: string | null): string;

/**
 * Creates a new room key for `membersJson` — `[{"user_id", "ed25519", "agreement_key",
 * "agreement_signature"}]`, the caller included — after verifying every agreement signature
 * (and that each Ed25519 key is the pinned one, for pinned users). Adds the key to this page's
 * ring for the room and returns `{"key_id", "shares": [{"user_id", "share"}]}` (standard
 * base64) for `PUT /api/v1/rooms/{id}/keys`.
 */
export function roomCreateKey(room_id: string, local_user_id: string, members_json: string): string;

/**
 * Decrypts an envelope that the server says `authorUserId` wrote; `authorEd25519` is the
 * author's pinned Ed25519 key (checked against this page's pin too). Returns `{"key_id",
 * "sender_id", "content"}`. Errors: `e2e_key_not_shared`, `e2e_locked`, `e2e_tampered`,
 * `e2e_wrong_sender`, `e2e_unknown_version`, `e2e_malformed` (and `key_changed` when the
 * given key is not the pinned one).
 */
export function roomDecrypt(room_id: string, envelope_b64: string, author_user_id: string, author_ed25519: string): string;

/**
 * Encrypts and signs `plaintextJson` (`{"text"}` or `{"file": {...}, "text"?}`) under the key
 * `keyIdB64` of the room. `senderUserId` must be this page's user. Returns the envelope in
 * standard base64.
 */
export function roomEncrypt(room_id: string, key_id_b64: string, sender_user_id: string, plaintext_json: string): string;

/**
 * The key id of an envelope (standard base64), read from its cleartext header.
 */
export function roomEnvelopeKeyId(envelope_b64: string): string;

/**
 * Drops a room's key ring (its keys are zeroized); the shares on the server can refill it.
 */
export function roomForget(room_id: string): void;

/**
 * Whether this page holds the room key `keyIdB64` for the room.
 */
export function roomHasKey(room_id: string, key_id_b64: string): boolean;

/**
 * The safety number with a pinned peer, as 12 groups of 5 digits separated by spaces.
 */
export function safetyNumber(peer_user_id: string): string;

/**
 * The safety number of any two users and keys (for tests and for showing a changed number).
 */
export function safetyNumberOf(user_a: string, curve25519_a: string, ed25519_a: string, user_b: string, curve25519_b: string, ed25519_b: string): string;

/**
 * Seals the trust store for the server to keep (after pins or verified marks changed).
 */
export function sealTrustStore(): Uint8Array;

/**
 * Enters the E2E key: opens the key backup and the sealed trust store. A missing trust store is
 * refused (`trust_store_missing`) unless `start_empty_trust_store` says the user agreed to lose
 * their pins and verified marks — otherwise a server could make the client forget every pin by
 * withholding the store. See [`UnlockResult`] for what the caller must act on.
 */
export function unlock(owner_user_id: string, key_backup: Uint8Array | number[], passphrase: string, sealed_trust_store: Uint8Array | number[] | null | undefined, start_empty_trust_store: boolean): UnlockResult;

/**
 * Unlocks with a remembered device key instead of the passphrase (no Argon2). A key from before a
 * passphrase change or reset fails with `wrong_passphrase`: forget it and ask for the
 * passphrase. The trust store is required, as in [`unlock`]; so is acting on the
 * [`UnlockResult`].
 */
export function unlockWithDeviceKey(owner_user_id: string, key_backup: Uint8Array | number[], device_key: Uint8Array | number[], sealed_trust_store: Uint8Array | number[]): UnlockResult;

export type InitInput = RequestInfo | URL | Response | BufferSource | WebAssembly.Module;

export interface InitOutput {
    readonly memory: WebAssembly.Memory;
    readonly __wbg_encryptedfile_free: (a: number, b: number) => void;
    readonly __wbg_otrstep_free: (a: number, b: number) => void;
    readonly __wbg_sealedkeys_free: (a: number, b: number) => void;
    readonly __wbg_unlockresult_free: (a: number, b: number) => void;
    readonly acknowledgeChange: (a: number, b: number, c: number, d: number, e: number, f: number) => [number, number];
    readonly changePassphrase: (a: number, b: number, c: number) => [number, number, number];
    readonly checkPassphrase: (a: number, b: number) => [number, number];
    readonly clearVerified: (a: number, b: number) => [number, number];
    readonly createIdentity: (a: number, b: number, c: number, d: number, e: number) => [number, number, number];
    readonly deviceKey: () => [number, number, number];
    readonly encryptedfile_ciphertext: (a: number) => any;
    readonly encryptedfile_key: (a: number) => [number, number];
    readonly encryptedfile_nonce: (a: number) => [number, number];
    readonly encryptedfile_sha256: (a: number) => [number, number];
    readonly fileDecrypt: (a: number, b: number, c: number, d: number, e: number, f: number, g: number, h: number) => [number, number, number];
    readonly fileEncrypt: (a: number, b: number) => [number, number, number];
    readonly generatePassphrase: () => [number, number, number, number];
    readonly isUnlocked: () => number;
    readonly isVerified: (a: number, b: number) => [number, number, number];
    readonly lock: () => void;
    readonly markVerified: (a: number, b: number, c: number, d: number, e: number, f: number) => [number, number];
    readonly observePeer: (a: number, b: number, c: number, d: number, e: number, f: number) => [number, number, number, number];
    readonly otrAccept: (a: number, b: number) => [number, number, number];
    readonly otrCancel: (a: number, b: number) => [number, number, number];
    readonly otrDecline: (a: number, b: number) => [number, number, number];
    readonly otrDestroy: (a: number, b: number) => void;
    readonly otrEnd: (a: number, b: number) => [number, number, number];
    readonly otrExpire: (a: number, b: number) => [number, number, number];
    readonly otrHoldsKeys: (a: number, b: number) => number;
    readonly otrOneTimeKeyCount: () => [number, number, number];
    readonly otrOpen: (a: number, b: number, c: number, d: number, e: number, f: number) => [number, number];
    readonly otrPeerDisconnected: (a: number, b: number) => [number, number, number];
    readonly otrReceive: (a: number, b: number, c: number, d: number) => [number, number, number];
    readonly otrRefresh: (a: number, b: number) => [number, number, number];
    readonly otrReplyToUnknown: (a: number, b: number) => any;
    readonly otrSendFile: (a: number, b: number, c: number, d: number, e: number, f: number, g: number, h: number) => [number, number, number];
    readonly otrSendText: (a: number, b: number, c: number, d: number) => [number, number, number];
    readonly otrSessionId: (a: number, b: number) => [number, number];
    readonly otrStart: (a: number, b: number) => [number, number, number];
    readonly otrState: (a: number, b: number) => [number, number];
    readonly otrstep_events: (a: number) => any;
    readonly otrstep_messageId: (a: number) => [number, number];
    readonly otrstep_packets: (a: number) => any;
    readonly passphraseBits: (a: number, b: number) => number;
    readonly publicKeys: () => [number, number, number, number];
    readonly resetIdentity: (a: number, b: number, c: number) => [number, number, number];
    readonly roomAddShare: (a: number, b: number, c: number, d: number, e: number, f: number, g: number, h: number, i: number, j: number) => [number, number, number, number];
    readonly roomCreateKey: (a: number, b: number, c: number, d: number, e: number, f: number) => [number, number, number, number];
    readonly roomDecrypt: (a: number, b: number, c: number, d: number, e: number, f: number, g: number, h: number) => [number, number, number, number];
    readonly roomEncrypt: (a: number, b: number, c: number, d: number, e: number, f: number, g: number, h: number) => [number, number, number, number];
    readonly roomEnvelopeKeyId: (a: number, b: number) => [number, number, number, number];
    readonly roomForget: (a: number, b: number) => [number, number];
    readonly roomHasKey: (a: number, b: number, c: number, d: number) => [number, number, number];
    readonly safetyNumber: (a: number, b: number) => [number, number, number, number];
    readonly safetyNumberOf: (a: number, b: number, c: number, d: number, e: number, f: number, g: number, h: number, i: number, j: number, k: number, l: number) => [number, number, number, number];
    readonly sealTrustStore: () => [number, number, number];
    readonly sealedkeys_backup: (a: number) => any;
    readonly sealedkeys_trustStore: (a: number) => any;
    readonly unlock: (a: number, b: number, c: number, d: number, e: number, f: number, g: number, h: number, i: number) => [number, number, number];
    readonly unlockWithDeviceKey: (a: number, b: number, c: number, d: number, e: number, f: number, g: number, h: number) => [number, number, number];
    readonly unlockresult_needsRekey: (a: number) => number;
    readonly unlockresult_upgradedBackup: (a: number) => any;
    readonly __wbindgen_exn_store: (a: number) => void;
    readonly __externref_table_alloc: () => number;
    readonly __wbindgen_externrefs: WebAssembly.Table;
    readonly __wbindgen_malloc: (a: number, b: number) => number;
    readonly __wbindgen_realloc: (a: number, b: number, c: number, d: number) => number;
    readonly __wbindgen_free: (a: number, b: number, c: number) => void;
    readonly __externref_table_dealloc: (a: number) => void;
    readonly __wbindgen_start: () => void;
}

export type SyncInitInput = BufferSource | WebAssembly.Module;

/**
 * Instantiates the given `module`, which can either be bytes or
 * a precompiled `WebAssembly.Module`.
 *
 * @param {{ module: SyncInitInput }} module - Passing `SyncInitInput` directly is deprecated.
 *
 * @returns {InitOutput}
 */
export function initSync(module: { module: SyncInitInput } | SyncInitInput): InitOutput;

/**
 * If `module_or_path` is {RequestInfo} or {URL}, makes a request and
 * for everything else, calls `WebAssembly.instantiate` directly.
 *
 * @param {{ module_or_path: InitInput | Promise<InitInput> }} module_or_path - Passing `InitInput` directly is deprecated.
 *
 * @returns {Promise<InitOutput>}
 */
export default function __wbg_init (module_or_path?: { module_or_path: InitInput | Promise<InitInput> } | InitInput | Promise<InitInput>): Promise<InitOutput>;
