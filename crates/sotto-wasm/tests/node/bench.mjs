// Benchmarks of the browser package under Node (not a test): the OTR handshake and the
// encrypt+decrypt round of a 100 B and a 4 KiB text, through the same JavaScript API the
// browser client uses. Run: node crates/sotto-wasm/tests/node/bench.mjs
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
console.log(JSON.stringify(results));
