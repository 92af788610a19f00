// The JavaScript API of the browser package, exercised the way the browser client uses it: two
// independent pages (Alice's and Bob's) with the test playing the relay.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { loadPage, pump } from "./load.mjs";

const ROOM = "room-1";
// User ids as the server numbers them (the agreement key is signed for the numeric id).
const [A, B, C, M] = ["1", "2", "3", "666"];

async function setUp() {
    const alice = await loadPage(`alice-${Math.random()}`);
    const bob = await loadPage(`bob-${Math.random()}`);
    const alicePass = alice.generatePassphrase();
    const bobPass = bob.generatePassphrase();
    const aliceSealed = alice.createIdentity(A, alicePass, true);
    const bobSealed = bob.createIdentity(B, bobPass, true);
    const aliceKeys = JSON.parse(alice.publicKeys());
    const bobKeys = JSON.parse(bob.publicKeys());
    assert.equal(alice.observePeer(B, bobKeys.curve25519, bobKeys.ed25519), "pinned_now");
    assert.equal(bob.observePeer(A, aliceKeys.curve25519, aliceKeys.ed25519), "pinned_now");
    alice.otrOpen(ROOM, A, B);
    bob.otrOpen(ROOM, B, A);
    return { alice, bob, alicePass, bobPass, aliceSealed, bobSealed, aliceKeys, bobKeys };
}

function establish(alice, bob) {
    const offer = alice.otrStart(ROOM);
    assert.equal(alice.otrState(ROOM), "offered");
    const invited = pump({ alice, bob }, "alice", "bob", offer.packets);
    assert.ok(invited.bob.some((e) => e.type === "invited"));
    assert.equal(bob.otrState(ROOM), "invited");
    const accept = bob.otrAccept(ROOM);
    pump({ alice, bob }, "bob", "alice", accept.packets);
    assert.equal(alice.otrState(ROOM), "established");
    assert.equal(bob.otrState(ROOM), "established");
    assert.equal(alice.otrSessionId(ROOM), bob.otrSessionId(ROOM));
}

test("off the record from Start OTR to End OTR through the JavaScript API", async () => {
    const { alice, bob } = await setUp();
    assert.throws(() => alice.otrSendText(ROOM, "too early"), { code: "not_established" });
    establish(alice, bob);

    const sent = alice.otrSendText(ROOM, "hello from alice");
    const seen = pump({ alice, bob }, "alice", "bob", sent.packets);
    assert.deepEqual(
        seen.bob.filter((e) => e.type === "message").map((e) => [e.id, e.text]),
        [[sent.messageId, "hello from alice"]],
    );
    assert.deepEqual(seen.alice.filter((e) => e.type === "delivered").map((e) => e.id), [sent.messageId]);

    const file = new Uint8Array(70_000).map((_, i) => i % 256);
    const sentFile = bob.otrSendFile(ROOM, "notes.bin", "application/octet-stream", file);
    const got = pump({ alice, bob }, "bob", "alice", sentFile.packets);
    const received = got.alice.find((e) => e.type === "file");
    assert.equal(received.name, "notes.bin");
    assert.deepEqual(received.data, file);

    const end = alice.otrEnd(ROOM);
    const ended = pump({ alice, bob }, "alice", "bob", end.packets);
    assert.ok(ended.bob.some((e) => e.type === "state" && e.state === "ended" && e.reason === "ended_by_peer"));
    assert.equal(alice.otrHoldsKeys(ROOM), false);
    assert.equal(bob.otrHoldsKeys(ROOM), false);
    assert.equal(bob.otrOneTimeKeyCount(), 0);
});

test("refresh keys is accepted by the peer without asking, and a reload is reported as a lost session", async () => {
    const { alice, bob } = await setUp();
    establish(alice, bob);
    const refresh = alice.otrRefresh(ROOM);
    const seen = pump({ alice, bob }, "alice", "bob", refresh.packets);
    assert.ok(seen.bob.some((e) => e.type === "refresh_accepted"));
    assert.ok(!seen.bob.some((e) => e.type === "invited"));
    assert.equal(alice.otrState(ROOM), "established");

    // Bob "reloads": his page forgets the conversation.
    bob.otrDestroy(ROOM);
    const sent = alice.otrSendText(ROOM, "still there?");
    const reply = bob.otrReplyToUnknown(sent.packets[0]);
    assert.ok(reply instanceof Uint8Array);
    const step = alice.otrReceive(ROOM, reply);
    assert.ok(step.events.some((e) => e.type === "state" && e.reason === "session_lost"));
});

test("decline and glare", async () => {
    const { alice, bob } = await setUp();
    const offer = alice.otrStart(ROOM);
    pump({ alice, bob }, "alice", "bob", offer.packets);
    const decline = bob.otrDecline(ROOM);
    pump({ alice, bob }, "bob", "alice", decline.packets);
    assert.equal(alice.otrState(ROOM), "declined");
    assert.equal(bob.otrState(ROOM), "declined");

    const fromAlice = alice.otrStart(ROOM).packets;
    const fromBob = bob.otrStart(ROOM).packets;
    const toAlice = fromAlice.flatMap((p) => bob.otrReceive(ROOM, p).packets);
    const toBob = fromBob.flatMap((p) => alice.otrReceive(ROOM, p).packets);
    pump({ alice, bob }, "alice", "bob", toBob);
    pump({ alice, bob }, "bob", "alice", toAlice);
    assert.equal(alice.otrState(ROOM), "established");
    assert.equal(bob.otrState(ROOM), "established");
});

test("key backup, trust store and safety numbers survive lock and unlock", async () => {
    const { alice, bob, bobPass, bobSealed, aliceKeys, bobKeys } = await setUp();
    assert.equal(alice.safetyNumber(B), bob.safetyNumber(A));
    assert.match(alice.safetyNumber(B), /^(\d{5} ){11}\d{5}$/);
    bob.markVerified(A, aliceKeys.curve25519, aliceKeys.ed25519);
    const sealed = bob.sealTrustStore();
    const backup = bobSealed.backup;

    bob.lock();
    assert.equal(bob.isUnlocked(), false);
    assert.throws(() => bob.publicKeys(), { code: "locked" });
    assert.throws(() => bob.unlock(B, backup, "WRONG-WRONG-WRONG-WRONG", sealed, false), { code: "wrong_passphrase" });
    assert.throws(() => bob.unlock(M, backup, bobPass, sealed, false), { code: "trust_store_unreadable" });
    // A server that withholds the trust store does not make the client forget its pins silently.
    assert.throws(() => bob.unlock(B, backup, bobPass, undefined, false), { code: "trust_store_missing" });
    assert.equal(bob.unlock(B, backup, bobPass, sealed, false).needsRekey, true, "test parameters ask for re-keying");
    assert.deepEqual(JSON.parse(bob.publicKeys()), bobKeys);
    assert.equal(bob.isVerified(A), true);

    // A new passphrase rotates the storage key: the old trust store no longer opens with it.
    const changed = bob.changePassphrase("correct horse battery staple 42!", true);
    bob.lock();
    assert.throws(() => bob.unlock(B, changed.backup, "correct horse battery staple 42!", sealed, false), { code: "trust_store_unreadable" });
    bob.unlock(B, changed.backup, "correct horse battery staple 42!", changed.trustStore, false);
    assert.equal(bob.isVerified(A), true, "the trust store follows the passphrase change");

    assert.throws(() => bob.checkPassphrase("P@ssw0rd2024!"), { code: "weak_passphrase" });
    assert.ok(bob.passphraseBits("correct horse battery staple 42!") >= 70);

    // Bob resets his identity: Alice's pin flags the change and blocks OTR until acknowledged.
    const reset = bob.resetIdentity(bobPass, true);
    assert.ok(reset.backup.length > 0 && reset.trustStore.length > 0);
    const resetKeys = JSON.parse(bob.publicKeys());
    assert.notDeepEqual(resetKeys, bobKeys);
    assert.equal(bob.isVerified(A), true, "Bob's own pins survive his reset");
    assert.equal(alice.observePeer(B, resetKeys.curve25519, resetKeys.ed25519), "changed");
    assert.throws(() => alice.otrStart(ROOM), { code: "key_changed" });
    alice.acknowledgeChange(B, resetKeys.curve25519, resetKeys.ed25519);
    alice.otrStart(ROOM);
});

test("destroying a conversation mid-handshake removes the pending one-time key", async () => {
    const { alice, bob } = await setUp();
    pump({ alice, bob }, "alice", "bob", alice.otrStart(ROOM).packets);
    bob.otrAccept(ROOM);
    assert.equal(bob.otrOneTimeKeyCount(), 1);
    bob.otrDestroy(ROOM);
    assert.equal(bob.otrOneTimeKeyCount(), 0);
    assert.equal(bob.otrState(ROOM), "not_started");
    assert.throws(() => bob.otrOpen("", B, A), { code: "invalid_identifier" });
});

test("safety numbers match the shared vectors", async () => {
    const page = await loadPage("vectors");
    const vectorsUrl = new URL("../../../sotto-crypto/tests/vectors/safety_numbers.json", import.meta.url);
    const { vectors } = JSON.parse(readFileSync(vectorsUrl, "utf8"));
    assert.ok(vectors.length >= 4);
    for (const v of vectors) {
        assert.equal(
            page.safetyNumberOf(v.user_a, v.curve25519_a, v.ed25519_a, v.user_b, v.curve25519_b, v.ed25519_b),
            v.safety_number,
        );
    }
});

test("a remembered device key unlocks without the passphrase until the passphrase changes", async () => {
    const page = await loadPage(`device-${Math.random()}`);
    const sealed = page.createIdentity(C, page.generatePassphrase(), true);
    const keys = page.publicKeys();
    const deviceKey = page.deviceKey();
    assert.equal(deviceKey.length, 32);
    page.lock();
    assert.throws(() => page.deviceKey(), { code: "locked" });
    assert.throws(() => page.unlockWithDeviceKey(C, sealed.backup, new Uint8Array(32), sealed.trustStore), {
        code: "wrong_passphrase",
    });
    assert.throws(() => page.unlockWithDeviceKey(M, sealed.backup, deviceKey, sealed.trustStore));
    page.unlockWithDeviceKey(C, sealed.backup, deviceKey, sealed.trustStore);
    assert.equal(page.publicKeys(), keys);

    const changed = page.changePassphrase(page.generatePassphrase(), true);
    page.lock();
    assert.throws(() => page.unlockWithDeviceKey(C, changed.backup, deviceKey, changed.trustStore), {
        code: "wrong_passphrase",
    });
});
