//! What a measured process costs, read from `/proc` (Linux only): CPU time (user + system) and
//! peak resident memory. The server and the forwarder run as their own processes so that these
//! figures are theirs alone, not the load generator's.

use std::path::Path;
use std::time::Duration;

/// Why a `/proc` figure could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// The file could not be read (the process is gone, or this is not Linux).
    #[error("reading {path}: {source}")]
    Read {
        /// The `/proc` file.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file did not have the expected shape.
    #[error("unexpected contents in {0}")]
    Format(String),
}

/// The CPU time a process has used so far (user + system, all threads).
pub fn cpu_time(pid: u32) -> Result<Duration, ProcessError> {
    let path = format!("/proc/{pid}/stat");
    let stat = read(&path)?;
    // The command name (field 2) is in parentheses and may contain spaces: count from after it.
    let after_name = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or_else(|| ProcessError::Format(path.clone()))?;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Field 3 (state) is index 0 here, so utime (field 14) is index 11 and stime (15) index 12.
    let ticks = |index: usize| -> Result<u64, ProcessError> {
        fields
            .get(index)
            .and_then(|f| f.parse::<u64>().ok())
            .ok_or_else(|| ProcessError::Format(path.clone()))
    };
    let total = ticks(11)? + ticks(12)?;
    Ok(Duration::from_secs_f64(
        total as f64 / clock_ticks_per_sec() as f64,
    ))
}

/// The peak resident set size of a process so far (`VmHWM`), in KiB.
pub fn peak_rss_kib(pid: u32) -> Result<u64, ProcessError> {
    status_kib(pid, "VmHWM:")
}

/// The current resident set size of a process (`VmRSS`), in KiB.
pub fn rss_kib(pid: u32) -> Result<u64, ProcessError> {
    status_kib(pid, "VmRSS:")
}

fn status_kib(pid: u32, key: &str) -> Result<u64, ProcessError> {
    let path = format!("/proc/{pid}/status");
    let status = read(&path)?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(key))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or(ProcessError::Format(path))
}

/// A process's open-file limit (soft, hard), from `/proc/PID/limits` (`unlimited` reads as
/// `u64::MAX`).
pub fn open_file_limit(pid: u32) -> Option<(u64, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    let mut values = line
        .trim_start_matches("Max open files")
        .split_whitespace()
        .map(|v| match v {
            "unlimited" => Some(u64::MAX),
            number => number.parse().ok(),
        });
    Some((values.next()??, values.next()??))
}

/// Raises a process's soft open-file limit to its hard limit and returns the limits after.
/// The workspace forbids `unsafe`, so this runs util-linux's `prlimit --pid` rather than calling
/// `setrlimit`; a child started afterwards inherits the raised limit. Raising the hard limit
/// itself needs privileges (`ulimit -Hn`, `/etc/security/limits.conf`, systemd's
/// `LimitNOFILE=`). Best effort: the limits are reported whatever happened.
pub fn raise_open_file_limit(pid: u32) -> (u64, u64) {
    if let Some((soft, hard)) = open_file_limit(pid)
        && soft < hard
    {
        let hard_text = if hard == u64::MAX {
            "unlimited".to_owned()
        } else {
            hard.to_string()
        };
        let _ = std::process::Command::new("prlimit")
            .arg("--pid")
            .arg(pid.to_string())
            .arg(format!("--nofile={hard_text}:{hard_text}"))
            .status();
    }
    open_file_limit(pid).unwrap_or((0, 0))
}

/// The 1-, 5- and 15-minute load averages of the machine, as `/proc/loadavg` prints them.
pub fn load_average() -> Option<String> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    Some(
        text.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
    )
}

/// The number of CPUs this process may run on.
pub fn cpu_count() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The CPU model, from `/proc/cpuinfo`.
pub fn cpu_model() -> Option<String> {
    let text = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_string())
}

/// Clock ticks per second for `/proc/PID/stat` (`getconf CLK_TCK`; 100 on every Linux we know
/// of, which is also the fallback: asking libc directly would need `unsafe`).
fn clock_ticks_per_sec() -> u64 {
    static TICKS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .filter(|&t| t > 0)
            .unwrap_or(100)
    })
}

fn read(path: &str) -> Result<String, ProcessError> {
    std::fs::read_to_string(Path::new(path)).map_err(|source| ProcessError::Read {
        path: path.to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_a_cpu_time_and_a_peak_rss() {
        let pid = std::process::id();
        assert!(cpu_time(pid).is_ok());
        assert!(peak_rss_kib(pid).unwrap_or(0) > 0);
        assert!(rss_kib(pid).unwrap_or(0) > 0);
        let (soft, hard) = open_file_limit(pid).unwrap_or((0, 0));
        assert!(soft > 0 && soft <= hard);
    }
}
