//! The real `sotto` binary: serve (URL printed, set-up link, SIGTERM), TOML config, `admin
//! backup` while running, `admin create-user --admin`.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::PW;
use sotto_api::rest::MessageBody;
use sotto_client::Client;

const BIN: &str = env!("CARGO_BIN_EXE_sotto");

fn sotto(data: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.env("SOTTO_DATA_DIR", data)
        .env("SOTTO_ARGON2_MEMORY_KIB", "8")
        .env("SOTTO_ARGON2_ITERATIONS", "1")
        .env("SOTTO_LOG", "warn")
        .env_remove("SOTTO_CONFIG")
        .env_remove("SOTTO_LISTEN");
    c
}

struct Running {
    child: Child,
    url: String,
    setup_token: Option<String>,
}

/// Starts `sotto serve` on port 0 and reads the URL (and set-up link) it prints.
fn serve(mut cmd: Command) -> Running {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn sotto");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let first = lines.next().expect("a line").expect("utf8");
    let url = first
        .strip_prefix("Sotto is running at ")
        .unwrap_or_else(|| panic!("unexpected: {first}"))
        .to_string();
    let mut setup_token = None;
    if let Some(Ok(line)) = lines.next()
        && let Some((_, token)) = line.split_once("/setup#")
    {
        setup_token = Some(token.to_string());
    }
    // Keep draining stdout so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Running {
        child,
        url,
        setup_token,
    }
}

fn terminate(mut r: Running) {
    let ok = Command::new("kill")
        .arg("-TERM")
        .arg(r.child.id().to_string())
        .status()
        .expect("kill");
    assert!(ok.success());
    for _ in 0..100 {
        if let Some(status) = r.child.try_wait().expect("wait") {
            assert!(status.success(), "graceful exit: {status}");
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = r.child.kill();
    panic!("sotto did not stop on SIGTERM");
}

#[tokio::test]
async fn serve_prints_url_and_setup_link_reads_toml_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("data-from-toml");
    let config = dir.path().join("sotto.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n",
            data.display()
        ),
    )
    .expect("write");
    let mut cmd = sotto(dir.path());
    cmd.env_remove("SOTTO_DATA_DIR")
        .arg("--config")
        .arg(&config)
        .arg("serve");
    let r = serve(cmd);
    assert!(r.url.starts_with("http://127.0.0.1:"));
    assert!(
        data.join("sotto.db").exists(),
        "data dir taken from the TOML file"
    );
    let token = r
        .setup_token
        .clone()
        .expect("set-up link printed on first start");
    let mut admin = Client::new(&r.url);
    admin.setup(&token, "root", PW).await.expect("link works");
    let health = admin
        .raw(sotto_client::Method::GET, "/healthz", None, &[])
        .await
        .expect("healthz");
    assert_eq!(health.status, 200);
    terminate(r);
}

#[tokio::test]
async fn backup_while_running_opens_in_a_fresh_server() {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("data");
    let mut cmd = sotto(&data);
    cmd.arg("--listen").arg("127.0.0.1:0");
    let r = serve(cmd);
    let mut admin = Client::new(&r.url);
    admin
        .setup(r.setup_token.as_deref().expect("token"), "root", PW)
        .await
        .expect("setup");
    let room = admin.create_group("backup me", &[]).await.expect("group");
    let up = admin
        .upload(room.id, "notes.txt", b"file in the backup".to_vec())
        .await
        .expect("upload");
    admin
        .send(
            room.id,
            &sotto_api::rest::SendMessageRequest {
                body: MessageBody::Text {
                    text: "in the backup".into(),
                },
                attachment_id: Some(up.id),
            },
        )
        .await
        .expect("send");

    let backup = dir.path().join("backup");
    let out = sotto(&data)
        .arg("admin")
        .arg("backup")
        .arg(&backup)
        .output()
        .expect("backup runs");
    assert!(
        out.status.success(),
        "backup failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    terminate(r);

    let server = sotto_server::Server::start(sotto_server::Config::for_tests(&backup))
        .await
        .expect("fresh server on the backup");
    let mut c = Client::new(server.url());
    c.login("root", PW).await.expect("login on the copy");
    let page = c.history(room.id, None, None, None).await.expect("history");
    assert_eq!(page.messages.len(), 1);
    assert_eq!(
        page.messages[0].body,
        MessageBody::Text {
            text: "in the backup".into()
        }
    );
    let file = c.download(up.id).await.expect("upload restored");
    assert_eq!(file.body, b"file in the backup");
    server.shutdown().await;
}

#[tokio::test]
async fn admin_create_user_makes_an_admin() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = sotto(dir.path())
        .args(["admin", "create-user", "boss", "--admin"])
        .env("SOTTO_NEW_PASSWORD", PW)
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let server = sotto_server::Server::start(sotto_server::Config::for_tests(dir.path()))
        .await
        .expect("start");
    assert!(
        server.setup_token.is_none(),
        "an admin exists, so no set-up link"
    );
    let mut c = Client::new(server.url());
    let r = c.login("boss", PW).await.expect("login");
    assert!(r.user.is_admin);
    server.shutdown().await;
}

#[tokio::test]
async fn an_admin_made_with_the_cli_spends_the_set_up_link() {
    let dir = tempfile::tempdir().expect("tmp");
    let server = sotto_server::Server::start(sotto_server::Config::for_tests(dir.path()))
        .await
        .expect("start");
    let token = server
        .setup_token
        .clone()
        .expect("link printed: no admin yet");
    // The operator follows the other advice printed beside the link, while the server runs.
    let out = sotto(dir.path())
        .args(["admin", "create-user", "boss", "--admin"])
        .env("SOTTO_NEW_PASSWORD", PW)
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut c = Client::new(server.url());
    let err = c
        .setup(&token, "intruder", PW)
        .await
        .expect_err("the link no longer works once an admin exists");
    assert_eq!(err.code(), Some(sotto_api::ErrorCode::InvalidSetupToken));
    assert_eq!(
        c.login("intruder", PW).await.err().and_then(|e| e.code()),
        Some(sotto_api::ErrorCode::InvalidCredentials),
        "no second admin was created"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn backup_copies_the_uploads_of_its_snapshot_and_skips_vanished_files() {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("data");
    let mut cmd = sotto(&data);
    cmd.arg("--listen").arg("127.0.0.1:0");
    let r = serve(cmd);
    let mut admin = Client::new(&r.url);
    admin
        .setup(r.setup_token.as_deref().expect("token"), "root", PW)
        .await
        .expect("setup");
    let room = admin.create_group("files", &[]).await.expect("group");
    let kept = admin
        .upload(room.id, "kept.txt", b"kept".to_vec())
        .await
        .expect("upload");
    admin
        .upload(room.id, "gone.txt", b"gone".to_vec())
        .await
        .expect("upload");
    let uploads = data.join("uploads");
    let stored = |d: &Path| -> Vec<std::path::PathBuf> {
        let mut v: Vec<_> = std::fs::read_dir(d)
            .expect("dir")
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect();
        v.sort();
        v
    };
    let before = stored(&uploads);
    assert_eq!(before.len(), 2);
    // One recorded file vanishes (as when its message is deleted mid-backup), and a file the
    // database does not know about appears.
    let gone = before
        .iter()
        .find(|p| std::fs::read(p).expect("read") == b"gone")
        .expect("gone file");
    std::fs::remove_file(gone).expect("remove");
    std::fs::write(uploads.join("stray"), b"not an upload").expect("stray");

    let backup = dir.path().join("backup");
    let out = sotto(&data)
        .arg("admin")
        .arg("backup")
        .arg(&backup)
        .output()
        .expect("backup runs");
    assert!(
        out.status.success(),
        "backup failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("1 uploads") && stdout.contains("1 skipped"),
        "{stdout}"
    );
    terminate(r);
    let copied = stored(&backup.join("uploads"));
    assert_eq!(
        copied.len(),
        1,
        "only the recorded, existing upload: {copied:?}"
    );

    let server = sotto_server::Server::start(sotto_server::Config::for_tests(&backup))
        .await
        .expect("fresh server on the backup");
    let mut c = Client::new(server.url());
    c.login("root", PW).await.expect("login on the copy");
    assert_eq!(c.download(kept.id).await.expect("kept").body, b"kept");
    server.shutdown().await;
}
