//! Figures for docs/benchmarks.md: `cargo bench -p sotto-crypto --bench crypto`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use sotto_crypto::backup::{KdfParams, Passphrase, create_backup, unlock_backup};
use sotto_crypto::identity::Identity;

#[path = "../tests/common/mod.rs"]
mod common;

fn handshake(c: &mut Criterion) {
    c.bench_function(
        "otr/handshake (offer, accept, confirm, ack; both sides)",
        |b| {
            b.iter_batched(
                common::pair,
                |(mut alice, mut bob)| {
                    let offer = alice.act(|s, k| s.start(k));
                    bob.deliver(offer);
                    let accept = bob.act(|s, k| s.accept(k));
                    common::pump(&mut bob, &mut alice, accept);
                    black_box((alice, bob))
                },
                criterion::BatchSize::SmallInput,
            )
        },
    );
}

fn round_trip(c: &mut Criterion) {
    for size in [100usize, 4096] {
        let text = "x".repeat(size);
        let (mut alice, mut bob) = common::established();
        c.bench_function(
            &format!("otr/encrypt+decrypt {size} B text (+ receiver's encrypted ack)"),
            |b| {
                b.iter(|| {
                    let (_, packet) = alice.session.send_text(black_box(&text)).unwrap();
                    let bytes = packet.encode();
                    let acks = bob.try_act(|s, k| s.receive(k, &bytes)).unwrap();
                    bob.events.clear();
                    black_box(acks)
                })
            },
        );
    }
}

fn unlock(c: &mut Criterion) {
    let passphrase = Passphrase::generate().unwrap();
    let (blob, _) = create_backup(Identity::generate(), &passphrase, KdfParams::DEFAULT).unwrap();
    let mut group = c.benchmark_group("backup");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(8));
    group.bench_function("unlock at default Argon2id (64 MiB, 3 passes)", |b| {
        b.iter(|| black_box(unlock_backup(&blob, passphrase.as_str()).unwrap()))
    });
    group.finish();
}

criterion_group!(benches, handshake, round_trip, unlock);
criterion_main!(benches);
