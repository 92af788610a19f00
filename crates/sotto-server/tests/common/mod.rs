//! Test helpers: a real server on port 0 with a temporary data directory, driven by the SDK.
#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use sotto_client::{Client, Realtime, RealtimeEvent};
use sotto_server::{Config, Server};

pub const PW: &str = "password-123";
pub const WAIT: Duration = Duration::from_secs(5);

pub struct TestServer {
    pub server: Option<Server>,
    pub dir: tempfile::TempDir,
    pub url: String,
}

impl TestServer {
    /// A second connection to the server's SQLite file, for tests that play a server writing
    /// straight into its database.
    pub async fn database(&self) -> sqlx::SqlitePool {
        sqlx::SqlitePool::connect(&format!(
            "sqlite://{}",
            self.dir
                .path()
                .join(sotto_server::storage::DB_FILE)
                .display()
        ))
        .await
        .expect("open the database")
    }

    pub async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> TestServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = Config::for_tests(dir.path());
        tweak(&mut config);
        let server = Server::start(config).await.expect("server starts");
        let url = server.url().to_string();
        TestServer {
            server: Some(server),
            dir,
            url,
        }
    }

    pub fn server(&self) -> &Server {
        self.server.as_ref().expect("running")
    }

    pub fn client(&self) -> Client {
        Client::new(&self.url)
    }

    /// Uses the set-up token to create the admin `admin`.
    pub async fn admin(&self) -> Client {
        let token = self
            .server()
            .setup_token
            .clone()
            .expect("fresh server has a setup token");
        let mut c = self.client();
        c.setup(&token, "admin", PW).await.expect("setup");
        c
    }

    /// Creates (through `admin`) and logs in a user.
    pub async fn user(&self, admin: &Client, name: &str) -> Client {
        admin
            .admin_create_user(name, PW, false)
            .await
            .expect("create user");
        let mut c = self.client();
        c.login(name, PW).await.expect("login");
        c
    }

    pub async fn stop(&mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown().await;
        }
    }
}

/// Waits for an event matching `pred` or panics.
pub async fn expect(
    rt: &mut Realtime,
    what: &str,
    pred: impl FnMut(&RealtimeEvent) -> bool,
) -> RealtimeEvent {
    match rt.wait_for(WAIT, pred).await {
        Some(ev) => ev,
        None => panic!("timed out waiting for {what}"),
    }
}

/// Every file under `dir`, recursively (for the at-rest scans).
pub fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir)
        .expect("read dir")
        .map_while(Result::ok)
    {
        let path = entry.path();
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// How often `needle` occurs in `haystack`.
pub fn occurrences(haystack: &[u8], needle: &[u8]) -> usize {
    if needle.is_empty() || needle.len() > haystack.len() {
        return 0;
    }
    haystack
        .windows(needle.len())
        .filter(|w| *w == needle)
        .count()
}
