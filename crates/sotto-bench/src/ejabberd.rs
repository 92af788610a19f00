//! ejabberd, the peer: installed from Debian's package when missing, configured into a
//! temporary directory, started with `ejabberdctl foreground` under a node name of its own, and
//! stopped when the [`EjabberdServer`] is dropped (also on an error or Ctrl-C: the scenario's
//! future is dropped and with it this guard).
//!
//! The configuration ([`config`]) is the least ejabberd needs to relay chat messages between
//! two clients on loopback: one plain c2s listener on 127.0.0.1 (no STARTTLS, so SASL PLAIN in
//! the clear), no traffic shaper, a 1 MiB stanza limit, in-band registration open to everyone
//! with no rate limit, passwords stored plain (only set-up is affected), Mnesia in the temporary
//! spool directory, `loglevel: warning`, and **no other module**: no message archive
//! (`mod_mam`), no offline storage (`mod_offline`), no roster, no stream management, no
//! carbons, no ping. Everything else is ejabberd 23.01's default (two Erlang schedulers on two
//! cores, `+K true +P 250000` from `ejabberdctl`).
//!
//! `ejabberdctl` runs the node as the `ejabberd` user (it `su`s when started as root), so the
//! temporary directory is handed to that user. The measured process is `beam.smp`, found in
//! `/proc` by its unique node name; `ejabberdctl`, `su` and `sh` above it only wait.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Where Debian's package puts the control script.
pub const EJABBERDCTL: &str = "/usr/sbin/ejabberdctl";
/// The XMPP domain the bench's server serves.
pub const DOMAIN: &str = "localhost";
/// How long ejabberd may take to open its port.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Why ejabberd could not be installed, started or measured.
#[derive(Debug, thiserror::Error)]
pub enum EjabberdError {
    /// `apt-get install ejabberd` failed.
    #[error("installing ejabberd with apt-get failed: {0}")]
    Install(String),
    /// The temporary directory or a file in it could not be written.
    #[error("ejabberd's temporary directory: {0}")]
    Files(#[from] std::io::Error),
    /// `ejabberdctl` could not be run.
    #[error("running {EJABBERDCTL}: {0}")]
    Start(std::io::Error),
    /// The node did not come up.
    #[error("ejabberd did not start: {0}")]
    NotReady(String),
}

/// The installed package.
#[derive(Debug, Clone)]
pub struct Installed {
    /// Debian's version string (`23.01-1`).
    pub version: String,
    /// Whether this call installed it.
    pub installed_now: bool,
    /// How long the check (and install) took.
    pub took: Duration,
}

/// Makes sure Debian's ejabberd package is installed: a `dpkg-query` when it is (milliseconds),
/// otherwise `apt-get install -y ejabberd` (with one `apt-get update` if the package is
/// unknown). The package's own service is never used: if installing started a daemon (a system
/// without a `policy-rc.d` that forbids it), that instance is stopped again.
pub fn ensure_installed() -> Result<Installed, EjabberdError> {
    let started = Instant::now();
    if let Some(version) = installed_version()
        && Path::new(EJABBERDCTL).is_file()
    {
        return Ok(Installed {
            version,
            installed_now: false,
            took: started.elapsed(),
        });
    }
    let mut attempt = apt_get(&["install", "-y", "ejabberd"])?;
    if !attempt.0 {
        let update = apt_get(&["update"])?;
        if !update.0 {
            return Err(EjabberdError::Install(format!(
                "apt-get update: {}",
                update.1
            )));
        }
        attempt = apt_get(&["install", "-y", "ejabberd"])?;
    }
    let version = match (attempt.0, installed_version()) {
        (true, Some(version)) => version,
        _ => return Err(EjabberdError::Install(attempt.1)),
    };
    // A package that started the default node: stop it, the bench runs its own.
    for pid in beam_pids("ejabberd@") {
        terminate_pid(pid, Duration::from_secs(10));
    }
    Ok(Installed {
        version,
        installed_now: true,
        took: started.elapsed(),
    })
}

fn installed_version() -> Option<String> {
    let output = Command::new("dpkg-query")
        .args(["-W", "-f", "${db:Status-Status} ${Version}", "ejabberd"])
        .output()
        .ok()?;
    let text = String::from_utf8(output.stdout).ok()?;
    text.strip_prefix("installed ").map(str::to_owned)
}

/// Runs apt-get non-interactively; (success, tail of its output).
fn apt_get(args: &[&str]) -> Result<(bool, String), EjabberdError> {
    let output = Command::new("apt-get")
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdin(Stdio::null())
        .output()
        .map_err(|error| EjabberdError::Install(format!("running apt-get: {error}")))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok((output.status.success(), last_lines(&text, 8)))
}

/// Which modules ejabberd runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Modules {
    /// `mod_register` alone: the lightest relay ejabberd can be (the default).
    #[default]
    Minimal,
    /// The modules of Debian's default `/etc/ejabberd/ejabberd.yml` except `mod_offline` (and
    /// `mod_mam`, which it does not enable either), with their default options: what a
    /// deployment typically runs, several of which hook every message (privacy, blocking,
    /// carbons...). The clients do not enable stream management or carbons.
    Debian,
}

impl Modules {
    /// The `modules:` section's body.
    fn yaml(self) -> &'static str {
        match self {
            Modules::Minimal => MINIMAL_MODULES,
            Modules::Debian => DEBIAN_MODULES,
        }
    }
}

const MINIMAL_MODULES: &str = "  mod_register:
    ip_access: all
    access: register
";

/// Debian's default module list (23.01-1), less `mod_offline`; `mod_muc` without its archive
/// option (there is no `mod_mam`).
const DEBIAN_MODULES: &str = "  mod_register:
    ip_access: all
    access: register
  mod_adhoc: {}
  mod_admin_extra: {}
  mod_announce:
    access: announce
  mod_avatar: {}
  mod_blocking: {}
  mod_bosh: {}
  mod_caps: {}
  mod_carboncopy: {}
  mod_client_state: {}
  mod_configure: {}
  mod_disco: {}
  mod_fail2ban: {}
  mod_http_api: {}
  mod_last: {}
  mod_mqtt: {}
  mod_muc:
    access:
      - allow
    access_admin:
      - allow: admin
    access_create: muc_create
    access_persistent: muc_create
  mod_muc_admin: {}
  mod_ping: {}
  mod_pres_counter:
    count: 5
    interval: 60
  mod_privacy: {}
  mod_private: {}
  mod_pubsub:
    access_createnode: pubsub_createnode
    plugins:
      - flat
      - pep
  mod_push: {}
  mod_push_keepalive: {}
  mod_roster:
    versioning: true
  mod_s2s_dialback: {}
  mod_shared_roster: {}
  mod_sic: {}
  mod_stream_mgmt:
    resend_on_timeout: if_offline
  mod_stun_disco: {}
  mod_vcard:
    search: false
  mod_vcard_xupdate: {}
  mod_version: {}
";

/// The configuration the bench runs ejabberd with (YAML), listening on `port`.
pub fn config(port: u16, modules: Modules) -> String {
    format!(
        r#"# Written by sotto-bench: a plain c2s relay on loopback, nothing stored, nothing shaped.
hosts:
  - {DOMAIN}
loglevel: warning
log_rotate_count: 0
hide_sensitive_log_data: true
acme:
  auto: false
listen:
  -
    port: {port}
    ip: "127.0.0.1"
    module: ejabberd_c2s
    max_stanza_size: {max_stanza}
    shaper: none
    access: c2s
    starttls: false
    starttls_required: false
shaper: {{}}
shaper_rules: {{}}
auth_method: internal
auth_password_format: plain
default_db: mnesia
registration_timeout: infinity
acl:
  admin:
    user: []
  local:
    user_regexp: ""
access_rules:
  c2s:
    allow: all
  register:
    allow: all
  local:
    allow: local
  announce:
    allow: admin
  configure:
    allow: admin
  muc_create:
    allow: local
  pubsub_createnode:
    allow: local
modules:
{modules}"#,
        max_stanza = crate::xmpp::MAX_STANZA_BYTES,
        modules = modules.yaml()
    )
}

/// `ejabberdctl`'s own settings (sourced by the script): no interactive warnings, and the
/// Erlang options of Debian's `/etc/default/ejabberd` without its system-wide pid file.
const EJABBERDCTL_CFG: &str = "EJABBERD_BYPASS_WARNINGS=true\n\
ERL_OPTIONS=\"-env ERL_CRASH_DUMP_BYTES 0\"\n";

/// Debian's `/etc/ejabberd/inetrc` (name resolution for the Erlang VM).
const INETRC: &str = "{lookup,[\"file\",\"native\"]}.\n\
{host,{127,0,0,1}, [\"localhost\",\"hostalias\"]}.\n\
{file, resolv, \"/etc/resolv.conf\"}.\n";

/// A running ejabberd node with its own temporary configuration, spool and logs.
pub struct EjabberdServer {
    control: Child,
    beam: u32,
    node: String,
    /// The c2s listener.
    pub addr: SocketAddr,
    /// From `ejabberdctl foreground` to the port answering.
    pub start_up: Duration,
    dir: tempfile::TempDir,
}

impl EjabberdServer {
    /// Writes the configuration, starts `ejabberdctl foreground` and waits until the c2s port
    /// accepts connections.
    pub fn start(modules: Modules) -> Result<EjabberdServer, EjabberdError> {
        static STARTED: AtomicU32 = AtomicU32::new(0);
        let node = format!(
            "sotto_bench_{}_{}@{DOMAIN}",
            std::process::id(),
            STARTED.fetch_add(1, Ordering::Relaxed)
        );
        let dir = tempfile::Builder::new()
            .prefix("sotto-bench-ejabberd-")
            .tempdir()?;
        let port = free_port()?;
        let root = dir.path();
        let (config_path, spool, logs) = (
            root.join("ejabberd.yml"),
            root.join("spool"),
            root.join("logs"),
        );
        std::fs::write(&config_path, config(port, modules))?;
        std::fs::write(root.join("ejabberdctl.cfg"), EJABBERDCTL_CFG)?;
        std::fs::write(root.join("inetrc"), INETRC)?;
        std::fs::create_dir(&spool)?;
        std::fs::create_dir(&logs)?;
        hand_to_ejabberd_user(root)?;

        let output = std::fs::File::create(root.join("ejabberdctl.out"))?;
        let started = Instant::now();
        let mut command = Command::new(EJABBERDCTL);
        command
            .arg("--config-dir")
            .arg(root)
            .arg("--config")
            .arg(&config_path)
            .arg("--spool")
            .arg(&spool)
            .arg("--logs")
            .arg(&logs)
            .arg("--node")
            .arg(&node)
            .arg("foreground")
            .stdin(Stdio::null())
            .stdout(output.try_clone()?)
            .stderr(output);
        for variable in [
            "EJABBERD_CONFIG_PATH",
            "EJABBERDCTL_CONFIG_PATH",
            "EJABBERD_OPTS",
            "ERL_OPTIONS",
            "ERLANG_NODE",
            "SPOOL_DIR",
            "LOGS_DIR",
            "CONFIG_DIR",
            "ERL_DIST_PORT",
        ] {
            command.env_remove(variable);
        }
        let control = command.spawn().map_err(EjabberdError::Start)?;
        let mut server = EjabberdServer {
            control,
            beam: 0,
            node,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            start_up: Duration::ZERO,
            dir,
        };
        server.wait_until_ready(started)?;
        server.start_up = started.elapsed();
        Ok(server)
    }

    fn wait_until_ready(&mut self, started: Instant) -> Result<(), EjabberdError> {
        loop {
            if let Ok(Some(status)) = self.control.try_wait() {
                return Err(EjabberdError::NotReady(format!(
                    "ejabberdctl exited ({status}): {}",
                    self.log_tail()
                )));
            }
            if self.beam == 0 {
                self.beam = beam_pids(&self.node).first().copied().unwrap_or(0);
            }
            if self.beam != 0
                && std::net::TcpStream::connect_timeout(&self.addr, Duration::from_millis(200))
                    .is_ok()
            {
                return Ok(());
            }
            if started.elapsed() > START_TIMEOUT {
                return Err(EjabberdError::NotReady(format!(
                    "port {} not open after {START_TIMEOUT:?}: {}",
                    self.addr.port(),
                    self.log_tail()
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The `beam.smp` process that is the node (what is measured).
    pub fn pid(&self) -> u32 {
        self.beam
    }

    /// The node's name.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The temporary directory (configuration, spool, logs).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Stops the node (dropping does the same).
    pub fn stop(self) {}

    /// The last lines of what `ejabberdctl` printed and of ejabberd's logs.
    fn log_tail(&self) -> String {
        let read = |path: PathBuf| std::fs::read_to_string(path).unwrap_or_default();
        let root = self.dir.path();
        format!(
            "ejabberdctl: {} | error.log: {}",
            last_lines(&read(root.join("ejabberdctl.out")), 5),
            last_lines(&read(root.join("logs/error.log")), 5)
        )
    }
}

impl Drop for EjabberdServer {
    /// SIGTERM to `beam.smp` (Erlang stops the node cleanly, about a second), SIGKILL if it
    /// lingers; then `ejabberdctl`, `su` and `sh` above it exit by themselves.
    fn drop(&mut self) {
        if self.beam == 0 {
            self.beam = beam_pids(&self.node).first().copied().unwrap_or(0);
        }
        if self.beam != 0 {
            terminate_pid(self.beam, Duration::from_secs(10));
        }
        for _ in 0..50 {
            if matches!(self.control.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.control.kill();
        let _ = self.control.wait();
    }
}

/// A port on 127.0.0.1 that nothing listens on right now.
fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// `ejabberdctl` started as root runs the node as the `ejabberd` user, which must own the
/// directory; as any other user it runs as that user.
fn hand_to_ejabberd_user(dir: &Path) -> Result<(), EjabberdError> {
    let status = Command::new("chown")
        .arg("-R")
        .arg("ejabberd:ejabberd")
        .arg(dir)
        .status()?;
    if status.success() {
        Ok(())
    } else {
        Err(EjabberdError::NotReady(format!(
            "chown -R ejabberd:ejabberd {} failed ({status})",
            dir.display()
        )))
    }
}

/// Process ids of `beam.smp` processes whose command line names `node` (a node name or the
/// start of one).
fn beam_pids(node: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            if comm.trim() != "beam.smp" {
                return false;
            }
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            cmdline
                .split(|&b| b == 0)
                .any(|arg| arg.starts_with(node.as_bytes()))
        })
        .collect()
}

/// SIGTERM, then SIGKILL after `grace`.
fn terminate_pid(pid: u32, grace: Duration) {
    let signal = |name: &str| {
        let _ = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(pid.to_string())
            .stderr(Stdio::null())
            .status();
    };
    signal("TERM");
    let deadline = Instant::now() + grace;
    while Path::new(&format!("/proc/{pid}")).exists() {
        if Instant::now() > deadline {
            signal("KILL");
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn last_lines(text: &str, count: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(count)..].join(" | ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_stores_nothing_and_shapes_nothing() {
        let text = config(5999, Modules::Minimal);
        assert!(text.contains("port: 5999"));
        assert!(text.contains("ip: \"127.0.0.1\""));
        assert!(text.contains("shaper: none"));
        assert!(text.contains("starttls_required: false"));
        for module in ["mod_mam", "mod_offline", "mod_stream_mgmt", "mod_roster"] {
            assert!(!text.contains(module), "{module} is on");
        }
        let typical = config(5999, Modules::Debian);
        assert!(typical.contains("mod_privacy") && typical.contains("mod_carboncopy"));
        assert!(!typical.contains("mod_mam") && !typical.contains("mod_offline"));
    }
}
