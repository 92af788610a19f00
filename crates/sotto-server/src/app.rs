//! Wiring: builds the services over storage and bus, binds the listener, serves the router,
//! and shuts down gracefully.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::serve::ListenerExt;

use tokio::sync::{broadcast, oneshot};
use tokio::task::JoinHandle;

use crate::bus::{Bus, BusMessage, InProcessBus};
use crate::config::Config;
use crate::realtime::Hub;
use crate::services::accounts::Accounts;
use crate::services::e2e::E2e;
use crate::services::messages::Messages;
use crate::services::otr_relay::OtrRelay;
use crate::services::presence::Presence;
use crate::services::room_keys::RoomKeyService;
use crate::services::rooms::Rooms;
use crate::services::search::Search;
use crate::services::settings::Settings;
use crate::services::uploads::Uploads;
use crate::storage::Db;
use crate::storage::sqlite::SqliteStorage;

/// Everything a handler can reach. Handlers hold no state of their own.
pub struct AppInner {
    /// Configuration.
    pub config: Config,
    /// Public base URL (no trailing slash).
    pub public_url: String,
    /// Database.
    pub db: Db,
    /// Realtime bus.
    pub bus: Arc<dyn Bus>,
    /// This node's connections.
    pub hub: Hub,
    /// Accounts service.
    pub accounts: Accounts,
    /// Rooms service.
    pub rooms: Rooms,
    /// Messages service.
    pub messages: Messages,
    /// Presence service.
    pub presence: Presence,
    /// Settings service.
    pub settings: Settings,
    /// Search service.
    pub search: Search,
    /// Uploads service.
    pub uploads: Uploads,
    /// E2E key directory.
    pub e2e: E2e,
    /// Room keys of encrypted rooms.
    pub room_keys: RoomKeyService,
    /// Off-the-record relay (in memory only).
    pub otr: OtrRelay,
}

/// Shared application state.
pub type App = Arc<AppInner>;

/// A running server.
pub struct Server {
    /// The bound address.
    pub addr: SocketAddr,
    /// The one-time admin set-up token, if there was no admin at start.
    pub setup_token: Option<String>,
    app: App,
    stop: Option<oneshot::Sender<()>>,
    serve: JoinHandle<()>,
    dispatcher: JoinHandle<()>,
    maintenance: JoinHandle<()>,
    relay: JoinHandle<()>,
}

/// Runs the periodic clean-ups once: event-log retention and unattached uploads.
pub async fn run_maintenance(app: &AppInner) {
    let retention = Duration::from_secs(app.config.event_retention_secs);
    match crate::services::events::prune(&app.db, retention).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(events = n, "pruned the event log"),
        Err(e) => tracing::warn!(error = %e, "event-log pruning failed"),
    }
    let age = Duration::from_secs(app.config.orphan_upload_secs);
    match crate::services::uploads::remove_orphans(&app.db, age).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(uploads = n, "removed unattached uploads"),
        Err(e) => tracing::warn!(error = %e, "upload clean-up failed"),
    }
}

impl Server {
    /// Opens storage, builds the services, binds and starts serving.
    pub async fn start(config: Config) -> anyhow::Result<Server> {
        let hub = Hub::new();
        let bus = Arc::new(InProcessBus::new(65_536));
        bus.attach_local(Arc::new(hub.clone()));
        let bus: Arc<dyn Bus> = bus;
        let db = SqliteStorage::open(&config.data_dir, bus.clone(), config.write_batch).await?;
        let settings = Settings::load(db.clone()).await?;
        let accounts = Accounts::new(
            db.clone(),
            settings.clone(),
            config.argon2_memory_kib,
            config.argon2_iterations,
        )?
        .with_session_idle(Duration::from_secs(config.session_idle_secs));
        let rooms = Rooms::new(db.clone(), accounts.clone(), settings.clone());
        let messages = Messages::new(db.clone(), rooms.clone(), settings.clone());
        let presence = Presence::new(rooms.clone(), bus.clone());
        let search = Search::new(db.clone(), messages.clone(), rooms.clone());
        let room_keys = RoomKeyService::new(db.clone(), rooms.clone());
        let uploads = Uploads::new(db.clone(), rooms.clone(), settings.clone());
        let e2e = E2e::new(db.clone(), rooms.clone(), settings.clone());
        let otr = OtrRelay::new(
            bus.clone(),
            settings.clone(),
            rooms.clone(),
            e2e.clone(),
            Duration::from_secs(config.resume_grace_secs),
        );
        let relay = tokio::spawn(otr.clone().run());
        let dispatcher = tokio::spawn(hub.clone().run(bus.clone()));

        let listener = tokio::net::TcpListener::bind(config.listen).await?;
        let addr = listener.local_addr()?;
        let public_url = config
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{addr}"))
            .trim_end_matches('/')
            .to_string();
        let setup_token = accounts.ensure_setup_token().await?;
        let app: App = Arc::new(AppInner {
            config,
            public_url,
            db,
            bus,
            hub,
            accounts,
            rooms,
            messages,
            presence,
            settings,
            search,
            uploads,
            e2e,
            room_keys,
            otr,
        });
        let maintenance = {
            let app = app.clone();
            tokio::spawn(async move {
                let mut every = tokio::time::interval(Duration::from_secs(3600));
                loop {
                    every.tick().await;
                    run_maintenance(&app).await;
                }
            })
        };
        let router = crate::http::router(app.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        let hub = app.hub.clone();
        let serve = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.await;
                hub.close_all((sotto_api::realtime::close::SHUTDOWN, "server shutting down"));
            };
            let svc = router.into_make_service_with_connect_info::<SocketAddr>();
            // No Nagle: the realtime socket writes small frames (a handshake is a volley of
            // them both ways) and batches on its own; Nagle plus the peer's delayed ACK held
            // such writes for 40 ms.
            let listener = listener.tap_io(|tcp| {
                if let Err(e) = tcp.set_nodelay(true) {
                    tracing::debug!(error = %e, "TCP_NODELAY not set");
                }
            });
            if let Err(e) = axum::serve(listener, svc)
                .with_graceful_shutdown(shutdown)
                .await
            {
                tracing::error!(error = %e, "server error");
            }
        });
        tracing::info!(%addr, "listening");
        Ok(Server {
            addr,
            setup_token,
            app,
            stop: Some(stop),
            serve,
            dispatcher,
            maintenance,
            relay,
        })
    }

    /// The public base URL.
    pub fn url(&self) -> &str {
        &self.app.public_url
    }

    /// The one-time admin set-up link, if any.
    pub fn setup_link(&self) -> Option<String> {
        self.setup_token
            .as_ref()
            .map(|t| format!("{}/setup#{t}", self.app.public_url))
    }

    /// Subscribes to the bus (e.g. to observe connection-closed signals in tests and, later,
    /// from the off-the-record relay).
    pub fn subscribe_bus(&self) -> broadcast::Receiver<Arc<BusMessage>> {
        self.app.bus.subscribe()
    }

    /// Shared state (for in-process tools such as backup).
    pub fn app(&self) -> &App {
        &self.app
    }

    /// Stops accepting, closes every realtime connection, waits (at most 10 s) for requests in
    /// flight, and closes the database.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if tokio::time::timeout(Duration::from_secs(10), &mut self.serve)
            .await
            .is_err()
        {
            self.serve.abort();
        }
        self.dispatcher.abort();
        self.maintenance.abort();
        self.relay.abort();
        let _ = self.app.db.close().await;
        tracing::info!("stopped");
    }
}
