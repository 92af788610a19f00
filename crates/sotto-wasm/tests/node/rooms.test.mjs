// Encrypted rooms through the JavaScript API, the way the browser client uses it: separate pages
// (one per user) exchange a room key through the server (played by the test), write and read
// envelopes, and encrypt a file.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { loadPage } from "./load.mjs";

const ROOM = "42";

/** A page with an unlocked identity for `userId`; returns the page and its directory entry. */
async function user(userId) {
    const page = await loadPage(`room-user-${userId}-${Math.random()}`);
    page.createIdentity(userId, page.generatePassphrase(), true);
    const keys = JSON.parse(page.publicKeys());
    assert.equal(keys.agreement_key.length, 43, "32 bytes, unpadded base64");
    assert.equal(keys.agreement_signature.length, 86, "64 bytes, unpadded base64");
    // A key-directory entry, passed whole (extra fields are ignored).
    const entry = { user_id: Number(userId), ...keys, published_at: "2026-11-26T10:00:00Z" };
    return { page, keys, entry, id: userId };
}

/** The JSON array of the members' user ids. */
const ids = (members) => JSON.stringify(members.map((m) => m.entry.user_id));
/** The author's directory entry, as roomDecrypt takes it. */
const by = (author) => JSON.stringify(author.entry);

/** Every page pins every other user (as after the key directory lookups). */
function pinAll(users) {
    for (const a of users) {
        for (const b of users) {
            if (a !== b) a.page.observePeer(b.id, b.keys.curve25519, b.keys.ed25519);
        }
    }
}

/** `from` creates a key for `members`; each member adds its share. Returns the key id. */
function distribute(from, members) {
    const created = JSON.parse(from.page.roomCreateKey(ROOM, from.id, JSON.stringify(members.map((m) => m.entry))));
    assert.equal(created.shares.length, members.length);
    assert.equal(from.page.roomHasKey(ROOM, created.key_id), true);
    const expected = JSON.stringify(members.map((m) => m.entry.user_id));
    for (const member of members) {
        if (member === from) continue;
        const share = created.shares.find((s) => s.user_id === member.entry.user_id).share;
        const added = JSON.parse(member.page.roomAddShare(ROOM, member.id, share, JSON.stringify(from.entry), expected));
        assert.equal(added.key_id, created.key_id);
        assert.equal(added.distributor_id, from.entry.user_id);
        assert.deepEqual(added.recipients, members.map((m) => m.entry.user_id).sort((a, b) => a - b));
        assert.equal(member.page.roomHasKey(ROOM, created.key_id), true);
    }
    return created;
}

test("two pages exchange a room key and a message; a non-member and a lock cannot read it", async () => {
    const alice = await user("1");
    const bob = await user("2");
    const eve = await user("66");
    pinAll([alice, bob, eve]);
    const { key_id: keyId } = distribute(alice, [alice, bob]);

    const envelope = alice.page.roomEncrypt(ROOM, keyId, alice.id, JSON.stringify({ text: "hello bob" }), ids([alice, bob]));
    assert.match(envelope, /^[A-Za-z0-9+/]+={0,2}$/);
    assert.equal(bob.page.roomEnvelopeKeyId(envelope), keyId);
    // The server checks the key id at bytes 8..24 of the decoded envelope.
    assert.equal(Buffer.from(Buffer.from(envelope, "base64").subarray(8, 24)).toString("base64"), keyId);
    const read = JSON.parse(bob.page.roomDecrypt(ROOM, envelope, by(alice)));
    assert.deepEqual(read, { key_id: keyId, sender_id: 1, content: { text: "hello bob" } });
    // Alice reads her own message too.
    assert.equal(JSON.parse(alice.page.roomDecrypt(ROOM, envelope, by(alice))).content.text, "hello bob");

    // Eve has no share.
    assert.throws(() => eve.page.roomDecrypt(ROOM, envelope, by(alice)), { code: "e2e_key_not_shared" });
    // A tampered envelope.
    const bytes = Buffer.from(envelope, "base64");
    bytes[70] ^= 1;
    assert.throws(() => bob.page.roomDecrypt(ROOM, bytes.toString("base64"), by(alice)), { code: "e2e_tampered" });
    bytes[70] ^= 1;
    bytes[7] = 9;
    assert.throws(() => bob.page.roomDecrypt(ROOM, bytes.toString("base64"), by(alice)), { code: "e2e_unknown_version" });
    assert.throws(() => bob.page.roomDecrypt(ROOM, "AAAA", by(alice)), { code: "e2e_malformed" });
    assert.throws(() => bob.page.roomEnvelopeKeyId("not base64!"), { code: "e2e_malformed" });

    // Locking forgets every ring; unlocking again starts empty (the shares on the server refill it).
    bob.page.lock();
    assert.throws(() => bob.page.roomDecrypt(ROOM, envelope, by(alice)), { code: "e2e_locked" });
    assert.equal(bob.page.roomHasKey(ROOM, keyId), false);
    alice.page.roomForget(ROOM);
    assert.equal(alice.page.roomHasKey(ROOM, keyId), false);
    assert.throws(() => alice.page.roomEncrypt(ROOM, keyId, alice.id, JSON.stringify({ text: "x" }), ids([alice, bob])), { code: "e2e_key_not_shared" });
});

test("a member cannot write in another member's name, and shares are checked", async () => {
    const alice = await user("1");
    const bob = await user("2");
    const mallory = await user("3");
    const eve = await user("66");
    pinAll([alice, bob, mallory, eve]);
    const { key_id: keyId, shares } = distribute(alice, [alice, bob, mallory]);

    // Mallory's page only signs as Mallory.
    assert.throws(() => mallory.page.roomEncrypt(ROOM, keyId, bob.id, JSON.stringify({ text: "forged" }), ids([alice, bob, mallory])), { code: "e2e_wrong_sender" });
    const fromMallory = mallory.page.roomEncrypt(ROOM, keyId, mallory.id, JSON.stringify({ text: "pay mallory" }), ids([alice, bob, mallory]));
    // A server stamping Bob as the author of Mallory's envelope is caught.
    assert.throws(() => alice.page.roomDecrypt(ROOM, fromMallory, by(bob)), { code: "e2e_wrong_sender" });
    // A directory serving Mallory's keys as Bob's is caught by Alice's pin.
    const bobAsMallory = JSON.stringify({ ...mallory.entry, user_id: 2 });
    assert.throws(() => alice.page.roomDecrypt(ROOM, fromMallory, bobAsMallory), { code: "e2e_key_changed" });

    // Eve (no member) distributes a key to the members: refused against the known membership.
    const members = JSON.stringify([1, 2, 3]);
    const evil = JSON.parse(eve.page.roomCreateKey(ROOM, eve.id, JSON.stringify([alice.entry, bob.entry, mallory.entry, eve.entry])));
    const toBob = evil.shares.find((s) => s.user_id === 2).share;
    assert.throws(() => bob.page.roomAddShare(ROOM, bob.id, toBob, JSON.stringify(eve.entry), members), {
        code: "e2e_share_distributor_not_member",
    });
    // Alice's share with a recipient list that is not the membership.
    const partial = JSON.parse(alice.page.roomCreateKey(ROOM, alice.id, JSON.stringify([alice.entry, bob.entry])));
    const partialToBob = partial.shares.find((s) => s.user_id === 2).share;
    assert.throws(() => bob.page.roomAddShare(ROOM, bob.id, partialToBob, JSON.stringify(alice.entry), members), {
        code: "e2e_share_members_mismatch",
    });
    // For another room, or opened by someone it was not sealed to.
    const aliceToBob = shares.find((s) => s.user_id === 2).share;
    assert.throws(() => bob.page.roomAddShare("43", bob.id, aliceToBob, JSON.stringify(alice.entry), members), {
        code: "e2e_share_wrong_room",
    });
    assert.throws(() => eve.page.roomAddShare(ROOM, eve.id, aliceToBob, JSON.stringify(alice.entry), members), {
        code: "e2e_share_not_recipient",
    });
    // The expected membership is required, and the local user is the unlocked one.
    assert.throws(() => bob.page.roomAddShare(ROOM, bob.id, aliceToBob, JSON.stringify(alice.entry), "null"), {
        code: "e2e_malformed",
    });
    assert.throws(() => bob.page.roomAddShare(ROOM, alice.id, aliceToBob, JSON.stringify(alice.entry), members), {
        code: "e2e_not_owner",
    });
    assert.throws(() => alice.page.roomCreateKey(ROOM, bob.id, JSON.stringify([alice.entry, bob.entry])), {
        code: "e2e_not_owner",
    });
    // Alice's own entry with another key is not hers.
    assert.throws(() => alice.page.roomCreateKey(ROOM, alice.id, JSON.stringify([{ ...alice.entry, ed25519: bob.keys.ed25519 }, bob.entry])), {
        code: "e2e_key_changed",
    });
    // An agreement key whose signature is not its owner's.
    const forgedEntry = { ...mallory.entry, agreement_key: bob.entry.agreement_key };
    assert.throws(() => alice.page.roomCreateKey(ROOM, alice.id, JSON.stringify([alice.entry, forgedEntry])), {
        code: "e2e_bad_agreement_signature",
    });
    assert.throws(() => alice.page.roomCreateKey(ROOM, alice.id, "not json"), { code: "e2e_malformed" });
    assert.throws(() => alice.page.roomCreateKey(ROOM, alice.id, JSON.stringify([bob.entry])), { code: "e2e_invalid_members" });
});

test("after a rotation old messages stay readable and a removed member cannot read new ones", async () => {
    const alice = await user("1");
    const bob = await user("2");
    const carol = await user("3");
    pinAll([alice, bob, carol]);
    const first = distribute(alice, [alice, bob, carol]).key_id;
    const before = bob.page.roomEncrypt(ROOM, first, bob.id, JSON.stringify({ text: "before" }), ids([alice, bob, carol]));
    const second = distribute(bob, [alice, bob]).key_id;
    const after = bob.page.roomEncrypt(ROOM, second, bob.id, JSON.stringify({ text: "after" }), ids([alice, bob]));
    for (const reader of [alice, carol]) {
        assert.equal(JSON.parse(reader.page.roomDecrypt(ROOM, before, by(bob))).content.text, "before");
    }
    assert.equal(JSON.parse(alice.page.roomDecrypt(ROOM, after, by(bob))).key_id, second);
    assert.throws(() => carol.page.roomDecrypt(ROOM, after, by(bob)), { code: "e2e_key_not_shared" });
});

test("a file is encrypted in chunks, named in a message and decrypted; tampering and truncation fail", async () => {
    const alice = await user("1");
    const bob = await user("2");
    pinAll([alice, bob]);
    const { key_id: keyId } = distribute(alice, [alice, bob]);
    const data = new Uint8Array(200_000).map((_, i) => (i * 7) % 256);
    const encrypted = alice.page.fileEncrypt(data);
    assert.equal(encrypted.ciphertext.length, data.length + 16 * 4, "four chunks of 64 KiB, a tag each");
    const file = {
        key: encrypted.key,
        nonce: encrypted.nonce,
        sha256: encrypted.sha256,
        name: "plan.bin",
        type: "application/octet-stream",
        size: data.length,
        upload_id: 7,
    };
    const envelope = alice.page.roomEncrypt(ROOM, keyId, alice.id, JSON.stringify({ file, text: "the plan" }), ids([alice, bob]));
    const { content } = JSON.parse(bob.page.roomDecrypt(ROOM, envelope, by(alice)));
    assert.deepEqual(content, { text: "the plan", file });
    const opened = bob.page.fileDecrypt(encrypted.ciphertext, content.file.key, content.file.nonce, content.file.sha256);
    assert.deepEqual(opened, data);

    const truncated = encrypted.ciphertext.slice(0, 65_536 + 16);
    assert.throws(() => bob.page.fileDecrypt(truncated, file.key, file.nonce, file.sha256), { code: "e2e_file_hash_mismatch" });
    const tampered = encrypted.ciphertext.slice();
    tampered[5] ^= 1;
    assert.throws(() => bob.page.fileDecrypt(tampered, file.key, file.nonce, file.sha256), { code: "e2e_file_hash_mismatch" });
    const sha = new Uint8Array(await crypto.subtle.digest("SHA-256", tampered));
    assert.throws(() => bob.page.fileDecrypt(tampered, file.key, file.nonce, Buffer.from(sha).toString("base64")), { code: "e2e_tampered" });
    assert.throws(() => bob.page.fileDecrypt(encrypted.ciphertext, "AAAA", file.nonce, file.sha256), { code: "e2e_malformed" });
});

test("members are pinned on first use, and a changed key is refused until acknowledged", async () => {
    const alice = await user("1");
    const bob = await user("2");
    const carol = await user("3");
    // No observePeer: creating the key pins Bob and Carol on Alice's page; adding a share pins
    // its distributor, Alice, on Bob's and Carol's.
    assert.equal(alice.page.isVerified(bob.id), false);
    const { key_id: keyId } = distribute(alice, [alice, bob, carol]);
    assert.equal(alice.page.observePeer(bob.id, bob.keys.curve25519, bob.keys.ed25519), "matches");
    assert.equal(bob.page.observePeer(alice.id, alice.keys.curve25519, alice.keys.ed25519), "matches");
    const members = ids([alice, bob, carol]);
    const envelope = bob.page.roomEncrypt(ROOM, keyId, bob.id, JSON.stringify({ text: "hi" }), members);
    // Carol's page pins Bob when it first reads him.
    assert.equal(JSON.parse(carol.page.roomDecrypt(ROOM, envelope, by(bob))).content.text, "hi");
    assert.equal(carol.page.observePeer(bob.id, bob.keys.curve25519, bob.keys.ed25519), "matches");

    // Bob resets his identity: the directory now serves new keys. Until the change is
    // acknowledged, no room function accepts them, whatever key (curve25519 too) changed.
    const newBob = await user("2");
    const changed = [
        newBob.entry,
        { ...bob.entry, curve25519: newBob.keys.curve25519 },
    ];
    for (const entry of changed) {
        assert.throws(() => alice.page.roomCreateKey(ROOM, alice.id, JSON.stringify([alice.entry, entry, carol.entry])), {
            code: "e2e_key_changed",
        });
        assert.throws(() => carol.page.roomDecrypt(ROOM, envelope, JSON.stringify(entry)), { code: "e2e_key_changed" });
    }
    // The old keys are still the pinned ones, and were never replaced by the attempts.
    assert.equal(JSON.parse(carol.page.roomDecrypt(ROOM, envelope, by(bob))).content.text, "hi");
    // Alice acknowledges the change (as after observePeer reported "changed"): now accepted.
    assert.equal(alice.page.observePeer(bob.id, newBob.keys.curve25519, newBob.keys.ed25519), "changed");
    alice.page.acknowledgeChange(bob.id, newBob.keys.curve25519, newBob.keys.ed25519);
    const rekeyed = JSON.parse(alice.page.roomCreateKey(ROOM, alice.id, JSON.stringify([alice.entry, newBob.entry, carol.entry])));
    assert.equal(rekeyed.shares.length, 3);
    // And the old key is refused for writing to another membership.
    assert.throws(() => bob.page.roomEncrypt(ROOM, keyId, bob.id, JSON.stringify({ text: "x" }), ids([alice, bob])), {
        code: "e2e_key_members_mismatch",
    });
    assert.throws(() => bob.page.roomEncrypt(ROOM, keyId, bob.id, JSON.stringify({ text: "x" }), "null"), {
        code: "e2e_malformed",
    });
});

test("the agreement key is the same after every unlock; no backup needs upgrading", async () => {
    // The agreement key is derived from the identity: unlocking by passphrase or by device key
    // yields the same public keys, and there is never an upgraded backup to store.
    const page = await loadPage(`upgrade-${Math.random()}`);
    const pass = page.generatePassphrase();
    const sealed = page.createIdentity("5", pass, true);
    const keys = page.publicKeys();
    const deviceKey = page.deviceKey();
    page.lock();
    const unlocked = page.unlock("5", sealed.backup, pass, sealed.trustStore, false);
    assert.equal(unlocked.upgradedBackup, undefined);
    assert.equal(unlocked.needsRekey, true);
    assert.equal(page.publicKeys(), keys, "the agreement key survives the backup");
    page.lock();
    const byDevice = page.unlockWithDeviceKey("5", sealed.backup, deviceKey, sealed.trustStore);
    assert.equal(byDevice.upgradedBackup, undefined);
    assert.equal(page.publicKeys(), keys);
});

test("a backup written before encrypted rooms gives the same agreement key at every unlock", async () => {
    // Written by the package of commit f2a507d, before the agreement key existed.
    const vectorUrl = new URL("../../../sotto-crypto/tests/vectors/v1_backup.json", import.meta.url);
    const v = JSON.parse(readFileSync(vectorUrl, "utf8"));
    const bytes = (b64) => new Uint8Array(Buffer.from(b64, "base64"));
    const keys = [];
    for (const name of ["a", "b"]) {
        const page = await loadPage(`v1-${name}-${Math.random()}`);
        const unlocked = page.unlock(v.owner_user_id, bytes(v.key_backup), v.passphrase, bytes(v.trust_store), false);
        assert.equal(unlocked.upgradedBackup, undefined, "nothing to store back");
        keys.push(JSON.parse(page.publicKeys()));
        page.lock();
        page.unlockWithDeviceKey(v.owner_user_id, bytes(v.key_backup), bytes(v.device_key), bytes(v.trust_store));
        keys.push(JSON.parse(page.publicKeys()));
    }
    assert.equal(keys[0].curve25519, v.curve25519);
    assert.equal(keys[0].ed25519, v.ed25519);
    // The same known answer as the native test.
    assert.equal(keys[0].agreement_key, "TfF+sfJEwJeWqzK5ULoE2Z9Ucmrd3lytB2btUTE3pgY");
    for (const k of keys) assert.deepEqual(k, keys[0]);
});
