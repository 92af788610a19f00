// Benchmarks of the browser package under Node (not a test): the OTR handshake and the
// encrypt+decrypt round of a 100 B and a 4 KiB text, the same for an encrypted room's envelope,
// a room key for 10 members, and a 1 MiB file, through the same JavaScript API the browser
// client uses. Run: node crates/sotto-wasm/tests/node/bench.mjs
import { loadPage, pump } from "./load.mjs";

const ROOM = "room-1";
// User ids as the server numbers them (the agreement key is signed for the numeric id).
const [A, B] = ["1", "2"];

async function pair() {
    const alice = await loadPage(`alice-${Math.random()}`);
    const bob = await loadPage(`bob-${Math.random()}`);
    alice.createIdentity(A, alice.generatePassphrase(), true);
    bob.createIdentity(B, bob.generatePassphrase(), true);
    const a = JSON.parse(alice.publicKeys());
    const b = JSON.parse(bob.publicKeys());
    alice.observePeer(B, b.curve25519, b.ed25519);
    bob.observePeer(A, a.curve25519, a.ed25519);
    return { alice, bob };
}

function handshake(alice, bob) {
    alice.otrDestroy(ROOM);
    bob.otrDestroy(ROOM);
    alice.otrOpen(ROOM, A, B);
    bob.otrOpen(ROOM, B, A);
    pump({ alice, bob }, "alice", "bob", alice.otrStart(ROOM).packets);
    pump({ alice, bob }, "bob", "alice", bob.otrAccept(ROOM).packets);
    if (alice.otrState(ROOM) !== "established") throw new Error("handshake failed");
}

function measure(label, iterations, body) {
    for (let i = 0; i < Math.min(50, iterations); i++) body();
    const start = performance.now();
    for (let i = 0; i < iterations; i++) body();
    const micros = ((performance.now() - start) * 1000) / iterations;
    console.log(`${label}: ${micros.toFixed(1)} µs per operation (${iterations} iterations)`);
    return micros;
}

const { alice, bob } = await pair();
const results = {};
results.handshake = measure("wasm/node otr handshake (both sides)", 300, () => handshake(alice, bob));
handshake(alice, bob);
for (const size of [100, 4096]) {
    const text = "x".repeat(size);
    results[`round_${size}`] = measure(`wasm/node encrypt+decrypt ${size} B text (+ receiver's encrypted ack)`, 3000, () => {
        const sent = alice.otrSendText(ROOM, text);
        bob.otrReceive(ROOM, sent.packets[0]);
    });
}
// Encrypted rooms: Alice and Bob share a room key (Alice's page creates it).
const roomId = "42";
const member = (page, id) => {
    const k = JSON.parse(page.publicKeys());
    return { user_id: Number(id), ed25519: k.ed25519, agreement_key: k.agreement_key, agreement_signature: k.agreement_signature };
};
const [aliceEntry, bobEntry] = [member(alice, A), member(bob, B)];
const created = JSON.parse(alice.roomCreateKey(roomId, A, JSON.stringify([aliceEntry, bobEntry])));
bob.roomAddShare(roomId, B, created.shares.find((s) => s.user_id === Number(B)).share, JSON.stringify(aliceEntry), null);
for (const size of [100, 4096]) {
    const plaintext = JSON.stringify({ text: "x".repeat(size) });
    results[`room_round_${size}`] = measure(`wasm/node room envelope encrypt+decrypt ${size} B text`, 3000, () => {
        const envelope = alice.roomEncrypt(roomId, created.key_id, A, plaintext);
        bob.roomDecrypt(roomId, envelope, A, aliceEntry.ed25519);
    });
}
// A key for ten members (the same two pages' keys under ten ids would fail the signatures, so
// ten pages).
const pages = [];
for (let i = 0; i < 10; i++) {
    const page = await loadPage(`member-${i}-${Math.random()}`);
    page.createIdentity(String(100 + i), page.generatePassphrase(), true);
    pages.push(member(page, String(100 + i)));
}
const creator = await loadPage(`creator-${Math.random()}`);
creator.createIdentity("100", creator.generatePassphrase(), true);
pages[0] = member(creator, "100");
results.room_key_10 = measure("wasm/node room key for 10 members (10 HPKE shares, signatures checked)", 100, () =>
    creator.roomCreateKey(roomId, "100", JSON.stringify(pages)),
);
const file = new Uint8Array(1 << 20);
results.file_1mib = measure("wasm/node 1 MiB file encrypt+decrypt", 30, () => {
    const encrypted = alice.fileEncrypt(file);
    bob.fileDecrypt(encrypted.ciphertext, encrypted.key, encrypted.nonce, encrypted.sha256);
});
console.log(JSON.stringify(results));
