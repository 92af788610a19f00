//! Storage: the SQLite database (WAL mode, embedded migrations) and the single writer.
//!
//! Reads go through a small pool of connections. **Every write goes through [`Writer`]**, one
//! task that owns the only writing connection, takes whatever jobs are queued, runs each inside
//! its own savepoint (a failed job leaves nothing half-written and does not disturb the others)
//! and commits the batch at once. SQLite allows one writer anyway; batching turns many small
//! transactions into one fsync, which is what makes high message rates possible. Stored events a
//! job emits are published on the bus by the writer *after* the commit, in commit order.
//!
//! Services own their tables and write portable SQL (`$1` placeholders, `BIGINT`
//! timestamps); the few SQLite-only statements (FTS5, `VACUUM INTO`, pragmas) are marked.

mod writer;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, SqlitePool};

pub use writer::{WriteOutbox, Writer};

use crate::bus::Bus;

/// The database file's name inside the data directory.
pub const DB_FILE: &str = "sotto.db";
/// The uploads directory's name inside the data directory.
pub const UPLOADS_DIR: &str = "uploads";

/// The embedded migrations, applied in order at start.
fn migrator() -> Migrator {
    let migrations = vec![Migration::new(
        1,
        "init".into(),
        MigrationType::Simple,
        include_str!("../../migrations/0001_init.sql").into(),
        false,
    )];
    Migrator {
        migrations: migrations.into(),
        ..Migrator::DEFAULT
    }
}

fn options(path: &Path) -> Result<SqliteConnectOptions, sqlx::Error> {
    Ok(
        SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10))
            .disable_statement_logging(),
    )
}

/// The database: a read pool and the writer.
#[derive(Clone)]
pub struct Db {
    /// Pool for reads (and nothing else).
    pub read: SqlitePool,
    /// The single writer.
    pub writer: Writer,
    data_dir: PathBuf,
}

impl Db {
    /// Opens (creating if needed) the database under `data_dir`, migrates it and starts the
    /// writer task, which publishes committed events on `bus`.
    pub async fn open(
        data_dir: &Path,
        bus: Arc<dyn Bus>,
        batch_max: usize,
    ) -> Result<Db, anyhow::Error> {
        std::fs::create_dir_all(data_dir.join(UPLOADS_DIR).join("tmp"))?;
        let path = data_dir.join(DB_FILE);
        let opts = options(&path)?;
        let mut write_conn = opts.connect().await?;
        migrator().run_direct(&mut write_conn).await?;
        let read = SqlitePoolOptions::new()
            .max_connections(4)
            .min_connections(1)
            .connect_with(opts.clone())
            .await?;
        let writer = Writer::start(write_conn, bus, batch_max);
        Ok(Db {
            read,
            writer,
            data_dir: data_dir.to_path_buf(),
        })
    }

    /// Where uploads live.
    pub fn uploads_dir(&self) -> PathBuf {
        self.data_dir.join(UPLOADS_DIR)
    }

    /// Writes a consistent copy of the database to `dest` (SQLite-only: `VACUUM INTO`). Safe
    /// while the server runs: it reads one snapshot.
    pub async fn backup_into(&self, dest: &Path) -> Result<(), sqlx::Error> {
        let dest = dest.to_string_lossy().to_string();
        sqlx::query("VACUUM INTO $1")
            .bind(dest)
            .execute(&self.read)
            .await?;
        Ok(())
    }

    /// Closes the pool (the writer ends when the last handle is dropped).
    pub async fn close(&self) {
        self.read.close().await;
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
