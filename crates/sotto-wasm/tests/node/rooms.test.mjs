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
    const entry = {
        user_id: Number(userId),
        ed25519: keys.ed25519,
        agreement_key: keys.agreement_key,
        agreement_signature: keys.agreement_signature,
    };
    return { page, keys, entry, id: userId };
}

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

    const envelope = alice.page.roomEncrypt(ROOM, keyId, alice.id, JSON.stringify({ text: "hello bob" }));
    assert.match(envelope, /^[A-Za-z0-9+/]+={0,2}$/);
    assert.equal(bob.page.roomEnvelopeKeyId(envelope), keyId);
    // The server checks the key id at bytes 8..24 of the decoded envelope.
    assert.equal(Buffer.from(Buffer.from(envelope, "base64").subarray(8, 24)).toString("base64"), keyId);
    const read = JSON.parse(bob.page.roomDecrypt(ROOM, envelope, alice.id, alice.keys.ed25519));
    assert.deepEqual(read, { key_id: keyId, sender_id: 1, content: { text: "hello bob" } });
    // Alice reads her own message too.
    assert.equal(JSON.parse(alice.page.roomDecrypt(ROOM, envelope, alice.id, alice.keys.ed25519)).content.text, "hello bob");

    // Eve has no share.
    assert.throws(() => eve.page.roomDecrypt(ROOM, envelope, alice.id, alice.keys.ed25519), { code: "e2e_key_not_shared" });
    // A tampered envelope.
    const bytes = Buffer.from(envelope, "base64");
    bytes[70] ^= 1;
    assert.throws(() => bob.page.roomDecrypt(ROOM, bytes.toString("base64"), alice.id, alice.keys.ed25519), { code: "e2e_tampered" });
    bytes[70] ^= 1;
    bytes[7] = 9;
    assert.throws(() => bob.page.roomDecrypt(ROOM, bytes.toString("base64"), alice.id, alice.keys.ed25519), { code: "e2e_unknown_version" });
    assert.throws(() => bob.page.roomDecrypt(ROOM, "AAAA", alice.id, alice.keys.ed25519), { code: "e2e_malformed" });
    assert.throws(() => bob.page.roomEnvelopeKeyId("not base64!"), { code: "e2e_malformed" });

    // Locking forgets every ring; unlocking again starts empty (the shares on the server refill it).
    bob.page.lock();
    assert.throws(() => bob.page.roomDecrypt(ROOM, envelope, alice.id, alice.keys.ed25519), { code: "e2e_locked" });
    assert.equal(bob.page.roomHasKey(ROOM, keyId), false);
    alice.page.roomForget(ROOM);
    assert.equal(alice.page.roomHasKey(ROOM, keyId), false);
    assert.throws(() => alice.page.roomEncrypt(ROOM, keyId, alice.id, JSON.stringify({ text: "x" })), { code: "e2e_key_not_shared" });
});

test("a member cannot write in another member's name, and shares are checked", async () => {
    const alice = await user("1");
    const bob = await user("2");
    const mallory = await user("3");
    const eve = await user("66");
    pinAll([alice, bob, mallory, eve]);
    const { key_id: keyId, shares } = distribute(alice, [alice, bob, mallory]);

    // Mallory's page only signs as Mallory.
    assert.throws(() => mallory.page.roomEncrypt(ROOM, keyId, bob.id, JSON.stringify({ text: "forged" })), { code: "e2e_wrong_sender" });
    const fromMallory = mallory.page.roomEncrypt(ROOM, keyId, mallory.id, JSON.stringify({ text: "pay mallory" }));
    // A server stamping Bob as the author of Mallory's envelope is caught.
    assert.throws(() => alice.page.roomDecrypt(ROOM, fromMallory, bob.id, bob.keys.ed25519), { code: "e2e_wrong_sender" });
    // A directory serving Mallory's key as Bob's is caught by Alice's pin.
    assert.throws(() => alice.page.roomDecrypt(ROOM, fromMallory, bob.id, mallory.keys.ed25519), { code: "key_changed" });

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
    assert.throws(() => eve.page.roomAddShare(ROOM, eve.id, aliceToBob, JSON.stringify(alice.entry), null), {
        code: "e2e_share_not_recipient",
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
    const before = bob.page.roomEncrypt(ROOM, first, bob.id, JSON.stringify({ text: "before" }));
    const second = distribute(bob, [alice, bob]).key_id;
    const after = bob.page.roomEncrypt(ROOM, second, bob.id, JSON.stringify({ text: "after" }));
    for (const reader of [alice, carol]) {
        assert.equal(JSON.parse(reader.page.roomDecrypt(ROOM, before, bob.id, bob.keys.ed25519)).content.text, "before");
    }
    assert.equal(JSON.parse(alice.page.roomDecrypt(ROOM, after, bob.id, bob.keys.ed25519)).key_id, second);
    assert.throws(() => carol.page.roomDecrypt(ROOM, after, bob.id, bob.keys.ed25519), { code: "e2e_key_not_shared" });
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
    const envelope = alice.page.roomEncrypt(ROOM, keyId, alice.id, JSON.stringify({ file, text: "the plan" }));
    const { content } = JSON.parse(bob.page.roomDecrypt(ROOM, envelope, alice.id, alice.keys.ed25519));
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

test("a backup from before encrypted rooms is upgraded at unlock, with the passphrase or the device key", async () => {
    // Written by the package of commit f2a507d, before the agreement key existed.
    const vectorUrl = new URL("../../../sotto-crypto/tests/vectors/v1_backup.json", import.meta.url);
    const v = JSON.parse(readFileSync(vectorUrl, "utf8"));
    const bytes = (b64) => new Uint8Array(Buffer.from(b64, "base64"));
    const page = await loadPage(`upgrade-${Math.random()}`);

    const unlocked = page.unlock(v.owner_user_id, bytes(v.key_backup), v.passphrase, bytes(v.trust_store), false);
    assert.ok(unlocked.upgradedBackup instanceof Uint8Array, "the re-sealed backup is offered");
    const keys = JSON.parse(page.publicKeys());
    assert.equal(keys.curve25519, v.curve25519);
    assert.equal(keys.ed25519, v.ed25519);
    assert.equal(keys.agreement_key.length, 43);

    // The upgraded backup opens with the same passphrase and device key, with the same keys.
    page.lock();
    const again = page.unlock(v.owner_user_id, unlocked.upgradedBackup, v.passphrase, bytes(v.trust_store), false);
    assert.equal(again.upgradedBackup, undefined);
    assert.deepEqual(JSON.parse(page.publicKeys()), keys);
    page.lock();
    const byDevice = page.unlockWithDeviceKey(v.owner_user_id, unlocked.upgradedBackup, bytes(v.device_key), bytes(v.trust_store));
    assert.equal(byDevice.upgradedBackup, undefined);
    assert.deepEqual(JSON.parse(page.publicKeys()), keys);

    // A device-key unlock of the old backup upgrades as well.
    page.lock();
    const oldByDevice = page.unlockWithDeviceKey(v.owner_user_id, bytes(v.key_backup), bytes(v.device_key), bytes(v.trust_store));
    assert.ok(oldByDevice.upgradedBackup instanceof Uint8Array);

    // A current backup reports nothing to upgrade.
    const fresh = await loadPage(`fresh-${Math.random()}`);
    const pass = fresh.generatePassphrase();
    const sealed = fresh.createIdentity("5", pass, true);
    fresh.lock();
    assert.equal(fresh.unlock("5", sealed.backup, pass, sealed.trustStore, false).upgradedBackup, undefined);
});
