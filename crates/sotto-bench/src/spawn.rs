//! The measured processes: the real `sotto` server (release binary, temporary data directory)
//! and the bare forwarder (this binary's `forwarder` subcommand). Each is a child process, so
//! `/proc/<pid>` gives its own CPU time and memory.

use std::io::{BufRead, BufReader, Lines};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Duration;

use crate::forwarder::READY_LINE;

/// Why a measured process could not be started.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// The executable could not be run.
    #[error("starting {program}: {source}")]
    Start {
        /// The executable.
        program: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// It started but did not print what it prints when ready.
    #[error("{program} did not start: {detail}")]
    NotReady {
        /// The executable.
        program: String,
        /// What was missing, with the tail of its log when there is one.
        detail: String,
    },
    /// The temporary data directory could not be created.
    #[error("temporary directory: {0}")]
    TempDir(std::io::Error),
}

/// Environment and flags the bench gives the server, reported with the results.
pub const SOTTO_ENVIRONMENT: &[(&str, &str)] = &[
    // Password hashing only matters while users are created; keep set-up quick.
    ("SOTTO_ARGON2_MEMORY_KIB", "8"),
    ("SOTTO_ARGON2_ITERATIONS", "1"),
    ("SOTTO_LOG", "warn"),
];

/// A running `sotto` server with its own temporary data directory.
pub struct SottoProcess {
    child: Child,
    /// The server's base URL (`http://127.0.0.1:<port>`).
    pub url: String,
    /// The one-time admin set-up token it printed.
    pub setup_token: String,
    data: tempfile::TempDir,
}

impl SottoProcess {
    /// Starts `bin serve` on a free loopback port with a fresh data directory.
    pub fn spawn(bin: &Path) -> Result<SottoProcess, SpawnError> {
        let data = tempfile::Builder::new()
            .prefix("sotto-bench-")
            .tempdir()
            .map_err(SpawnError::TempDir)?;
        let log = data.path().join("server.log");
        let log_file = std::fs::File::create(&log).map_err(SpawnError::TempDir)?;
        let mut command = Command::new(bin);
        command
            .arg("serve")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(data.path().join("data"))
            .env_remove("SOTTO_CONFIG")
            .env_remove("SOTTO_LISTEN")
            .env_remove("SOTTO_DATA_DIR")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file);
        for (key, value) in SOTTO_ENVIRONMENT {
            command.env(key, value);
        }
        let program = bin.display().to_string();
        let mut child = command.spawn().map_err(|source| SpawnError::Start {
            program: program.clone(),
            source,
        })?;
        let not_ready = |detail: &str| SpawnError::NotReady {
            program: program.clone(),
            detail: format!("{detail}; log: {}", tail(&log)),
        };
        let mut lines = stdout_lines(&mut child).ok_or_else(|| not_ready("no stdout"))?;
        let url = next_line(&mut lines)
            .and_then(|l| l.strip_prefix("Sotto is running at ").map(str::to_owned))
            .ok_or_else(|| not_ready("no URL line"))?;
        let setup_token = next_line(&mut lines)
            .and_then(|l| {
                l.split_once("/setup#")
                    .map(|(_, token)| token.trim().to_owned())
            })
            .ok_or_else(|| not_ready("no set-up link (the data directory is not fresh?)"))?;
        drain_in_background(lines);
        Ok(SottoProcess {
            child,
            url,
            setup_token,
            data,
        })
    }

    /// The process id, for `/proc` measurements.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The data directory (database, log).
    pub fn data_dir(&self) -> &Path {
        self.data.path()
    }

    /// Stops the server with SIGTERM (a clean shutdown), killing it if it lingers.
    pub fn stop(mut self) {
        terminate(&mut self.child);
    }
}

impl Drop for SottoProcess {
    /// A scenario that fails or is interrupted (Ctrl-C drops its future) stops its server too.
    fn drop(&mut self) {
        terminate(&mut self.child);
    }
}

/// A running bare forwarder.
pub struct ForwarderProcess {
    child: Child,
    /// The address it listens on (`127.0.0.1:<port>`).
    pub addr: String,
}

impl ForwarderProcess {
    /// Starts `exe forwarder --listen 127.0.0.1:0` (`exe` is a `sotto-bench` binary).
    pub fn spawn(exe: &Path) -> Result<ForwarderProcess, SpawnError> {
        let program = exe.display().to_string();
        let mut child = Command::new(exe)
            .args(["forwarder", "--listen", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|source| SpawnError::Start {
                program: program.clone(),
                source,
            })?;
        let not_ready = |detail: &str| SpawnError::NotReady {
            program: program.clone(),
            detail: detail.to_owned(),
        };
        let mut lines = stdout_lines(&mut child).ok_or_else(|| not_ready("no stdout"))?;
        let addr = next_line(&mut lines)
            .and_then(|l| l.strip_prefix(READY_LINE).map(str::to_owned))
            .ok_or_else(|| not_ready("no ready line"))?;
        drain_in_background(lines);
        Ok(ForwarderProcess { child, addr })
    }

    /// The process id, for `/proc` measurements.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops the forwarder.
    pub fn stop(mut self) {
        terminate(&mut self.child);
    }
}

impl Drop for ForwarderProcess {
    fn drop(&mut self) {
        terminate(&mut self.child);
    }
}

/// The `sotto` binary to measure: the given path, else `target/release/sotto` found from the
/// current directory upwards or next to this executable.
pub fn find_sotto_binary(given: Option<PathBuf>) -> Option<PathBuf> {
    if let Some(path) = given {
        return Some(path);
    }
    let mut candidates = Vec::new();
    if let Ok(dir) = std::env::var("CARGO_TARGET_DIR") {
        candidates.push(PathBuf::from(dir).join("release/sotto"));
    }
    if let Ok(cwd) = std::env::current_dir() {
        for dir in cwd.ancestors() {
            candidates.push(dir.join("target/release/sotto"));
        }
    }
    if let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe.parent()
    {
        candidates.push(dir.join("sotto"));
    }
    candidates.into_iter().find(|p| p.is_file())
}

fn stdout_lines(child: &mut Child) -> Option<Lines<BufReader<ChildStdout>>> {
    child.stdout.take().map(|out| BufReader::new(out).lines())
}

fn next_line(lines: &mut Lines<BufReader<ChildStdout>>) -> Option<String> {
    lines.next().and_then(Result::ok)
}

/// Keeps reading the child's stdout so it never blocks on a full pipe.
fn drain_in_background(lines: Lines<BufReader<ChildStdout>>) {
    std::thread::spawn(move || for _ in lines.map_while(Result::ok) {});
}

fn terminate(child: &mut Child) {
    // Already stopped and reaped: its pid may belong to another process by now.
    if matches!(child.try_wait(), Ok(Some(_))) {
        return;
    }
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    for _ in 0..50 {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(5)..].join(" | ")
}
