//! Configuration: command-line flags, `SOTTO_*` environment variables and an optional TOML file,
//! in that order of precedence, over built-in defaults.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Human,
    /// One JSON object per line.
    Json,
}

/// Every setting that can come from flags, environment or the TOML file. All optional; unset
/// values fall back to the file, then to the defaults in [`Config`].
#[derive(Debug, Clone, Default, Deserialize, clap::Args)]
#[serde(deny_unknown_fields)]
pub struct Layer {
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, global = true, env = "SOTTO_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Data directory (database and uploads) [default: ./sotto-data].
    #[arg(long, global = true, env = "SOTTO_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Public base URL used in printed links and as the allowed WebSocket origin
    /// [default: http://<listen>].
    #[arg(long, global = true, env = "SOTTO_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Extra allowed WebSocket origins, comma-separated.
    #[arg(
        long,
        global = true,
        env = "SOTTO_ALLOWED_ORIGINS",
        value_delimiter = ','
    )]
    pub allowed_origins: Option<Vec<String>>,
    /// Log format [default: human].
    #[arg(long, global = true, env = "SOTTO_LOG_FORMAT")]
    pub log_format: Option<LogFormat>,
    /// Log filter, `tracing` syntax [default: info].
    #[arg(long, global = true, env = "SOTTO_LOG")]
    pub log: Option<String>,
    /// WebSocket read buffer per connection, bytes [default: 2048].
    #[arg(long, global = true, env = "SOTTO_WS_READ_BUFFER")]
    pub ws_read_buffer: Option<usize>,
    /// WebSocket write buffer per connection, bytes: frames queued together are written in
    /// chunks of this size [default: 16384].
    #[arg(long, global = true, env = "SOTTO_WS_WRITE_BUFFER")]
    pub ws_write_buffer: Option<usize>,
    /// Largest WebSocket message accepted from a client, bytes [default: 262144].
    #[arg(long, global = true, env = "SOTTO_WS_MAX_MESSAGE")]
    pub ws_max_message: Option<usize>,
    /// Outgoing queue length per connection; a client that falls this far behind is
    /// disconnected [default: 256].
    #[arg(long, global = true, env = "SOTTO_WS_QUEUE")]
    pub ws_queue: Option<usize>,
    /// Seconds between WebSocket heartbeats; a connection silent for 3 of them is dropped
    /// [default: 20].
    #[arg(long, global = true, env = "SOTTO_HEARTBEAT_SECS")]
    pub heartbeat_secs: Option<u64>,
    /// Seconds a connection id that dropped abnormally stays reserved for its session to
    /// resume [default: 20].
    #[arg(long, global = true, env = "SOTTO_RESUME_GRACE_SECS")]
    pub resume_grace_secs: Option<u64>,
    /// Seconds a session may go unused before its token stops working (HTTP and WebSocket
    /// answer 401 `invalid_token`) [default: 2592000 (30 days)].
    #[arg(long, global = true, env = "SOTTO_SESSION_IDLE_SECS")]
    pub session_idle_secs: Option<u64>,
    /// Seconds stored events are kept for reconnect catch-up [default: 2592000 (30 days)].
    #[arg(long, global = true, env = "SOTTO_EVENT_RETENTION_SECS")]
    pub event_retention_secs: Option<u64>,
    /// Seconds before an upload never attached to a message is deleted [default: 86400].
    #[arg(long, global = true, env = "SOTTO_ORPHAN_UPLOAD_SECS")]
    pub orphan_upload_secs: Option<u64>,
    /// Argon2id memory cost in KiB [default: 19456].
    #[arg(long, global = true, env = "SOTTO_ARGON2_MEMORY_KIB")]
    pub argon2_memory_kib: Option<u32>,
    /// Argon2id iterations [default: 2].
    #[arg(long, global = true, env = "SOTTO_ARGON2_ITERATIONS")]
    pub argon2_iterations: Option<u32>,
    /// Largest number of jobs the database writer commits at once [default: 256].
    #[arg(long, global = true, env = "SOTTO_WRITE_BATCH")]
    pub write_batch: Option<usize>,
}

/// Resolved configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Listen address (port 0 picks a free port).
    pub listen: SocketAddr,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Public URL; `None` means derive from the bound address.
    pub public_url: Option<String>,
    /// Allowed WebSocket origins besides the public URL's.
    pub allowed_origins: Vec<String>,
    /// Log format.
    pub log_format: LogFormat,
    /// Log filter.
    pub log: String,
    /// WebSocket read buffer.
    pub ws_read_buffer: usize,
    /// WebSocket write buffer.
    pub ws_write_buffer: usize,
    /// Largest incoming WebSocket message.
    pub ws_max_message: usize,
    /// Outgoing queue per connection.
    pub ws_queue: usize,
    /// Heartbeat period.
    pub heartbeat_secs: u64,
    /// Grace period for resuming a dropped connection id.
    pub resume_grace_secs: u64,
    /// Idle lifetime of a session.
    pub session_idle_secs: u64,
    /// Event-log retention.
    pub event_retention_secs: u64,
    /// Age at which unattached uploads are deleted.
    pub orphan_upload_secs: u64,
    /// Argon2id memory (KiB).
    pub argon2_memory_kib: u32,
    /// Argon2id iterations.
    pub argon2_iterations: u32,
    /// Writer batch size.
    pub write_batch: usize,
}

impl Config {
    /// Defaults with the given data directory.
    pub fn with_data_dir(data_dir: impl Into<PathBuf>) -> Config {
        Config::resolve(
            Layer {
                data_dir: Some(data_dir.into()),
                ..Layer::default()
            },
            None,
        )
    }

    /// Cheap settings for tests: port 0, minimal Argon2id cost (never use in production).
    pub fn for_tests(data_dir: impl Into<PathBuf>) -> Config {
        let mut c = Config::with_data_dir(data_dir);
        c.listen = SocketAddr::from(([127, 0, 0, 1], 0));
        c.argon2_memory_kib = 8;
        c.argon2_iterations = 1;
        c
    }

    /// Merges flags/env (`cli`) over the file over defaults.
    pub fn resolve(cli: Layer, file: Option<Layer>) -> Config {
        let f = file.unwrap_or_default();
        macro_rules! pick {
            ($field:ident, $default:expr) => {
                cli.$field
                    .clone()
                    .or(f.$field.clone())
                    .unwrap_or_else(|| $default)
            };
        }
        Config {
            listen: pick!(listen, SocketAddr::from(([127, 0, 0, 1], 8080))),
            data_dir: pick!(data_dir, PathBuf::from("./sotto-data")),
            public_url: cli.public_url.clone().or(f.public_url.clone()),
            allowed_origins: pick!(allowed_origins, Vec::new()),
            log_format: pick!(log_format, LogFormat::Human),
            log: pick!(log, "info".to_string()),
            ws_read_buffer: pick!(ws_read_buffer, 2048),
            ws_write_buffer: pick!(ws_write_buffer, 16384),
            ws_max_message: pick!(ws_max_message, 256 * 1024),
            ws_queue: pick!(ws_queue, 256),
            heartbeat_secs: pick!(heartbeat_secs, 20),
            resume_grace_secs: pick!(resume_grace_secs, 20),
            session_idle_secs: pick!(session_idle_secs, 30 * 24 * 3600),
            event_retention_secs: pick!(event_retention_secs, 30 * 24 * 3600),
            orphan_upload_secs: pick!(orphan_upload_secs, 24 * 3600),
            argon2_memory_kib: pick!(argon2_memory_kib, 19 * 1024),
            argon2_iterations: pick!(argon2_iterations, 2),
            write_batch: pick!(write_batch, 256),
        }
    }

    /// Reads a TOML file of [`Layer`] keys.
    pub fn read_file(path: &Path) -> anyhow::Result<Layer> {
        let text = std::fs::read_to_string(path)?;
        Ok(toml::from_str(&text)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_beat_the_file_which_beats_defaults() {
        let file: Layer =
            toml::from_str("data_dir = \"/from/file\"\nws_queue = 7\nlog_format = \"json\"\n")
                .expect("toml");
        let cli = Layer {
            ws_queue: Some(99),
            ..Layer::default()
        };
        let c = Config::resolve(cli, Some(file));
        assert_eq!(c.ws_queue, 99);
        assert_eq!(c.data_dir, PathBuf::from("/from/file"));
        assert_eq!(c.log_format, LogFormat::Json);
        assert_eq!(c.listen, SocketAddr::from(([127, 0, 0, 1], 8080)));
        assert!(
            toml::from_str::<Layer>("no_such_key = 1").is_err(),
            "unknown keys are refused"
        );
    }
}
