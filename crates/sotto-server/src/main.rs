//! The `sotto` binary: `sotto` / `sotto serve` runs the server; `sotto admin ...` are
//! maintenance commands that work while the server runs.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use sotto_server::Server;
use sotto_server::bus::InProcessBus;
use sotto_server::config::{Config, Layer, LogFormat};
use sotto_server::services::accounts::Accounts;
use sotto_server::services::settings::Settings;
use sotto_server::storage::sqlite::SqliteStorage;
use sotto_server::storage::{DB_FILE, Db, UPLOADS_DIR};

/// Sotto: a self-hosted team chat server with off-the-record direct messages.
///
/// Every option can also be set with the SOTTO_* environment variable shown, or in a TOML
/// file (--config) using the option's name with underscores (e.g. `data_dir = "/var/sotto"`).
/// Precedence: flags, then environment, then the file, then defaults.
#[derive(Parser)]
#[command(name = "sotto", version)]
struct Cli {
    /// TOML configuration file.
    #[arg(long, env = "SOTTO_CONFIG", global = true)]
    config: Option<PathBuf>,
    #[command(flatten)]
    layer: Layer,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve,
    /// Administration commands.
    #[command(subcommand)]
    Admin(AdminCommand),
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Write a consistent copy of the database and uploads into DIR (safe while running).
    Backup {
        /// Destination directory (created; must not already hold a backup).
        dir: PathBuf,
    },
    /// Create a user. The password is read from SOTTO_NEW_PASSWORD or the first line of stdin.
    CreateUser {
        /// Username.
        username: String,
        /// Make the user an administrator.
        #[arg(long)]
        admin: bool,
    },
}

fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Human => builder.init(),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let file = match &cli.config {
        Some(p) => Some(Config::read_file(p).with_context(|| format!("reading {}", p.display()))?),
        None => None,
    };
    let (layer, command) = match cli.command {
        None => (cli.layer, None),
        Some(Command::Serve) => (cli.layer, None),
        Some(Command::Admin(a)) => (cli.layer, Some(a)),
    };
    let config = Config::resolve(layer, file);
    init_logging(&config);
    match command {
        None => serve(config).await,
        Some(AdminCommand::Backup { dir }) => backup(&config, &dir).await,
        Some(AdminCommand::CreateUser { username, admin }) => {
            create_user(&config, &username, admin).await
        }
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let server = Server::start(config).await?;
    println!("Sotto is running at {}", server.url());
    if let Some(link) = server.setup_link() {
        println!("No admin yet. Create one with this one-time link: {link}");
        println!("(or run: sotto admin create-user <name> --admin)");
    }
    shutdown_signal().await;
    println!("Shutting down");
    server.shutdown().await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

async fn open(config: &Config) -> anyhow::Result<Db> {
    if !config.data_dir.join(DB_FILE).exists() {
        anyhow::bail!("no database in {}", config.data_dir.display());
    }
    SqliteStorage::open(
        &config.data_dir,
        Arc::new(InProcessBus::new(16)),
        config.write_batch,
    )
    .await
}

async fn backup(config: &Config, dir: &Path) -> anyhow::Result<()> {
    let db = open(config).await?;
    std::fs::create_dir_all(dir)?;
    let dest_db = dir.join(DB_FILE);
    if dest_db.exists() {
        anyhow::bail!("{} already exists", dest_db.display());
    }
    // The database first: every upload it references was written before its row. Then the
    // files its `uploads` table lists (not whatever the directory holds by now). An upload
    // deleted since the snapshot was taken has lost its file: it is skipped and counted.
    db.backup_into(&dest_db)
        .await
        .context("copying the database")?;
    let _ = db.close().await;
    let snapshot = SqliteStorage::open(dir, Arc::new(InProcessBus::new(16)), config.write_batch)
        .await
        .context("opening the copy")?;
    let names = snapshot
        .upload_files()
        .await
        .map_err(|e| anyhow::anyhow!("listing the uploads of the copy: {e}"))?;
    let _ = snapshot.close().await;
    let src = config.data_dir.join(UPLOADS_DIR);
    let dst = dir.join(UPLOADS_DIR);
    std::fs::create_dir_all(&dst)?;
    let (mut files, mut missing) = (0, 0);
    for name in names {
        // Stored names are generated by the server; refuse anything that is not a bare name.
        if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
            tracing::warn!("skipping an upload with an unexpected file name");
            continue;
        }
        match std::fs::copy(src.join(&name), dst.join(&name)) {
            Ok(_) => files += 1,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                tracing::warn!(file = %name, "an upload was deleted while copying; skipped");
                missing += 1;
            }
            Err(e) => return Err(e).with_context(|| format!("copying upload {name}")),
        }
    }
    let missing = if missing > 0 {
        format!(", {missing} skipped: deleted while copying")
    } else {
        String::new()
    };
    println!(
        "Backup written to {} (database + {files} uploads{missing})",
        dir.display()
    );
    Ok(())
}

async fn create_user(config: &Config, username: &str, admin: bool) -> anyhow::Result<()> {
    let password = match std::env::var("SOTTO_NEW_PASSWORD") {
        Ok(p) => p,
        Err(_) => {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line)?;
            line.trim_end_matches(['\r', '\n']).to_string()
        }
    };
    std::fs::create_dir_all(&config.data_dir)?;
    let db = SqliteStorage::open(
        &config.data_dir,
        Arc::new(InProcessBus::new(16)),
        config.write_batch,
    )
    .await?;
    let settings = Settings::load(db.clone()).await?;
    let accounts = Accounts::new(
        db.clone(),
        settings,
        config.argon2_memory_kib,
        config.argon2_iterations,
    )?;
    let user = accounts
        .create_user(username, &password, admin)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let _ = db.close().await;
    println!(
        "Created user {} (id {}){}",
        user.username,
        user.id,
        if admin { " as admin" } else { "" }
    );
    Ok(())
}
