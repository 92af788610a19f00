//! Nothing at rest: the real `sotto` binary, logging at its most verbose, relays an
//! off-the-record conversation (texts with canary strings, a file, Refresh Keys, End OTR). Then
//! every file under the data directory (database, `-wal`, `-shm`, uploads), the captured log and
//! the metrics are scanned for each canary, every OTR payload that crossed the wire (raw and
//! base64), the one-time keys and the session ids: zero occurrences. The same scan finds the
//! canary of an ordinary message, which shows that it can find things.

mod common;

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use common::{PW, WAIT, files_under, occurrences};
use sotto_client::sotto_crypto::backup::{KdfParams, Passphrase, unlock_backup};
use sotto_client::sotto_crypto::otr::{OtrEvent, OtrState};
use sotto_client::{Client, ConnectOptions, OtrEndpoint, OtrUpdate};

const BIN: &str = env!("CARGO_BIN_EXE_sotto");

struct Binary {
    child: Child,
    url: String,
    setup_token: String,
}

fn start(data: &Path, log: &Path) -> Binary {
    let mut child = Command::new(BIN)
        .arg("serve")
        .arg("--listen")
        .arg("127.0.0.1:0")
        .env("SOTTO_DATA_DIR", data)
        .env("SOTTO_LOG", "trace")
        .env("SOTTO_ARGON2_MEMORY_KIB", "8")
        .env("SOTTO_ARGON2_ITERATIONS", "1")
        .env_remove("SOTTO_CONFIG")
        .env_remove("SOTTO_LISTEN")
        .stdout(Stdio::piped())
        .stderr(File::create(log).expect("log file"))
        .spawn()
        .expect("spawn sotto");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let first = lines.next().expect("a line").expect("utf8");
    let url = first
        .strip_prefix("Sotto is running at ")
        .expect("URL line")
        .to_string();
    let setup = lines.next().expect("set-up line").expect("utf8");
    let setup_token = setup
        .split_once("/setup#")
        .expect("set-up link")
        .1
        .to_string();
    // Whatever else the binary prints goes into the scanned log as well.
    let mut copy = std::fs::OpenOptions::new()
        .append(true)
        .open(log)
        .expect("log");
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            use std::io::Write;
            let _ = writeln!(copy, "{line}");
        }
    });
    Binary {
        child,
        url,
        setup_token,
    }
}

fn stop(mut binary: Binary) {
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(binary.child.id().to_string())
        .status();
    assert!(status.expect("kill").success());
    for _ in 0..100 {
        if binary.child.try_wait().expect("wait").is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = binary.child.kill();
    panic!("sotto did not stop");
}

/// Every representation of `bytes` a careless server might have written.
fn encodings(bytes: &[u8]) -> Vec<Vec<u8>> {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    vec![
        bytes.to_vec(),
        STANDARD.encode(bytes).into_bytes(),
        STANDARD_NO_PAD.encode(bytes).into_bytes(),
        URL_SAFE_NO_PAD.encode(bytes).into_bytes(),
        hex.into_bytes(),
    ]
}

async fn pump_until(
    a: &mut OtrEndpoint,
    b: &mut OtrEndpoint,
    room: i64,
    done: impl Fn(OtrState, OtrState) -> bool,
) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !done(a.state(room), b.state(room)) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "stuck: {:?} / {:?}",
            a.state(room),
            b.state(room)
        );
        a.next(Duration::from_millis(20)).await;
        b.next(Duration::from_millis(20)).await;
    }
}

async fn receive_text(endpoint: &mut OtrEndpoint, want: &str) {
    let (found, _) = endpoint
        .wait_for(WAIT, |u| matches!(u, OtrUpdate::Event { event: OtrEvent::Message { text, .. }, .. } if text.as_str() == want))
        .await;
    assert!(found.is_some(), "{want} arrived");
}

#[tokio::test]
async fn nothing_off_the_record_is_left_on_disk_in_logs_or_metrics() {
    let data = tempfile::tempdir().expect("data dir");
    let scratch = tempfile::tempdir().expect("log dir");
    let log = scratch.path().join("sotto.log");
    let binary = start(data.path(), &log);

    let mut admin = Client::new(&binary.url);
    admin
        .setup(&binary.setup_token, "admin", PW)
        .await
        .expect("admin");
    admin
        .admin_create_user("alice", PW, false)
        .await
        .expect("alice");
    admin
        .admin_create_user("bob", PW, false)
        .await
        .expect("bob");
    let (mut alice, mut bob) = (Client::new(&binary.url), Client::new(&binary.url));
    alice.login("alice", PW).await.expect("login");
    bob.login("bob", PW).await.expect("login");
    let room = alice.dm(bob.user_id()).await.expect("dm").id;

    let unique = format!("{:016x}", rand_u64());
    let ordinary = format!("ORDINARY-CANARY-{unique}");
    alice
        .send_text(room, &ordinary)
        .await
        .expect("ordinary message");

    let alice_pass = Passphrase::generate().unwrap();
    let alice_keys = alice
        .e2e_setup(&alice_pass, KdfParams::INSECURE_FOR_TESTS)
        .await
        .unwrap();
    let bob_keys = bob
        .e2e_setup(
            &Passphrase::generate().unwrap(),
            KdfParams::INSECURE_FOR_TESTS,
        )
        .await
        .unwrap();
    let mut a = OtrEndpoint::connect(&alice, alice_keys, ConnectOptions::default())
        .await
        .unwrap();
    let mut b = OtrEndpoint::connect(&bob, bob_keys, ConnectOptions::default())
        .await
        .unwrap();
    a.tap_wire();
    b.tap_wire();
    a.open(&alice, room).await.unwrap();
    b.open(&bob, room).await.unwrap();

    a.start(room).unwrap();
    b.wait_for(WAIT, |u| {
        matches!(
            u,
            OtrUpdate::Event {
                event: OtrEvent::Invited { .. },
                ..
            }
        )
    })
    .await;
    b.accept(room).unwrap();
    pump_until(&mut a, &mut b, room, |x, y| {
        x == OtrState::Established && y == OtrState::Established
    })
    .await;

    let canaries: Vec<String> = (0..4).map(|i| format!("OTR-CANARY-{i}-{unique}")).collect();
    a.send_text(room, &canaries[0]).unwrap();
    receive_text(&mut b, &canaries[0]).await;
    b.send_text(room, &canaries[1]).unwrap();
    receive_text(&mut a, &canaries[1]).await;
    let file_canary = format!("OTR-FILE-CANARY-{unique}");
    a.send_file(
        room,
        "secret.txt",
        "text/plain",
        file_canary.repeat(200).as_bytes(),
    )
    .unwrap();
    b.wait_for(WAIT, |u| {
        matches!(
            u,
            OtrUpdate::Event {
                event: OtrEvent::File { .. },
                ..
            }
        )
    })
    .await;
    a.refresh(room).unwrap();
    pump_until(&mut a, &mut b, room, |x, y| {
        x == OtrState::Established && y == OtrState::Established
    })
    .await;
    b.send_text(room, &canaries[2]).unwrap();
    receive_text(&mut a, &canaries[2]).await;
    a.send_text(room, &canaries[3]).unwrap();
    receive_text(&mut b, &canaries[3]).await;
    a.end(room).unwrap();
    pump_until(&mut a, &mut b, room, |x, y| {
        matches!(x, OtrState::Ended(_)) && matches!(y, OtrState::Ended(_))
    })
    .await;

    // Alice's stored key backup holds no one-time key.
    let backup = alice.e2e_own_backup().await.expect("backup");
    let unlocked = unlock_backup(&backup, alice_pass.as_str()).expect("unlock");
    assert_eq!(unlocked.otr.one_time_key_count(), 0);

    let metrics = alice
        .raw(sotto_client::Method::GET, "/metrics", None, &[])
        .await
        .expect("metrics")
        .body;

    // What must not be anywhere.
    let mut needles: Vec<(String, Vec<u8>)> = Vec::new();
    for canary in canaries.iter().chain([&file_canary]) {
        needles.push((canary.clone(), canary.as_bytes().to_vec()));
    }
    let mut wire: Vec<Vec<u8>> = a.tapped().to_vec();
    wire.extend(b.tapped().iter().cloned());
    assert!(wire.len() >= 12, "the tap saw the conversation");
    for (index, payload) in wire.iter().enumerate() {
        // The whole payload, and what follows the 18-byte header (key material or ciphertext).
        for (form, encoded) in encodings(payload).into_iter().enumerate() {
            needles.push((format!("payload {index} form {form}"), encoded));
        }
        if payload.len() > 34 {
            for (form, encoded) in encodings(&payload[18..]).into_iter().enumerate() {
                needles.push((format!("payload {index} body form {form}"), encoded));
            }
        }
        for (form, encoded) in encodings(&payload[2..18]).into_iter().enumerate() {
            needles.push((
                format!("session id of payload {index} form {form}"),
                encoded,
            ));
        }
        // Accept packets carry the responder's one-time key after version and nonce.
        if payload.get(1) == Some(&2) && payload.len() >= 67 {
            for (form, encoded) in encodings(&payload[35..67]).into_iter().enumerate() {
                needles.push((
                    format!("one-time key of payload {index} form {form}"),
                    encoded,
                ));
            }
        }
    }
    drop((a, b));
    stop(binary);

    let mut files = Vec::new();
    files_under(data.path(), &mut files);
    assert!(!files.is_empty(), "the data directory has files to scan");
    let mut haystacks: Vec<(String, Vec<u8>)> = files
        .iter()
        .map(|f| {
            (
                f.display().to_string(),
                std::fs::read(f).unwrap_or_default(),
            )
        })
        .collect();
    let log_bytes = std::fs::read(&log).expect("log");
    assert!(
        log_bytes.len() > 1000,
        "trace logging produced a log worth scanning"
    );
    // The log is really the server's request log: the OTR set-up requests are in it.
    assert!(
        occurrences(&log_bytes, b"/api/v1/e2e/keys") > 0,
        "the captured log records requests"
    );
    haystacks.push(("log".into(), log_bytes));
    haystacks.push(("metrics".into(), metrics));

    for (name, needle) in &needles {
        for (file, bytes) in &haystacks {
            assert_eq!(occurrences(bytes, needle), 0, "{name} found in {file}");
        }
    }
    let found: usize = haystacks
        .iter()
        .map(|(_, bytes)| occurrences(bytes, ordinary.as_bytes()))
        .sum();
    assert!(
        found > 0,
        "the scan finds the ordinary message's canary (the scan works)"
    );
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    hasher.finish()
}
