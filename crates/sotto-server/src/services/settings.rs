//! Settings service: a typed registry of server settings, persisted in the `settings` table,
//! cached in memory, changed by admins only and pushed live to every connection.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use serde_json::Value;
use sotto_api::ErrorCode;
use sotto_api::realtime::ServerEvent;
use sotto_api::rest::SettingsMap;

use crate::bus::{BusMessage, Frame};
use crate::error::{ApiError, ApiResult};
use crate::storage::{Db, now_ms};

/// The type (and allowed range) of a setting.
#[derive(Debug, Clone, Copy)]
pub enum SettingType {
    /// `true` / `false`.
    Bool,
    /// An integer in `min..=max`.
    Int {
        /// Smallest allowed.
        min: u64,
        /// Largest allowed.
        max: u64,
    },
    /// One of a fixed set of strings.
    Choice(&'static [&'static str]),
}

/// One entry of the registry.
#[derive(Debug, Clone, Copy)]
pub struct SettingDef {
    /// Dotted key.
    pub key: &'static str,
    /// Type.
    pub ty: SettingType,
    /// Default, as JSON text.
    pub default: &'static str,
    /// Readable by every client (otherwise admins only).
    pub public: bool,
}

/// Every setting the server knows.
pub const REGISTRY: &[SettingDef] = &[
    SettingDef {
        key: "otr.enabled",
        ty: SettingType::Bool,
        default: "true",
        public: true,
    },
    SettingDef {
        key: "otr.invite_timeout_secs",
        ty: SettingType::Int { min: 5, max: 3600 },
        default: "60",
        public: true,
    },
    SettingDef {
        key: "otr.max_frame_bytes",
        ty: SettingType::Int {
            min: 1024,
            max: 1 << 20,
        },
        default: "65536",
        public: true,
    },
    SettingDef {
        key: "e2e.enabled",
        ty: SettingType::Bool,
        default: "true",
        public: true,
    },
    SettingDef {
        key: "e2e.encrypt_new_dms",
        ty: SettingType::Bool,
        default: "false",
        public: true,
    },
    SettingDef {
        key: "e2e.encrypt_new_groups",
        ty: SettingType::Bool,
        default: "false",
        public: true,
    },
    SettingDef {
        key: "registration.policy",
        ty: SettingType::Choice(&["open", "invite_only", "closed"]),
        default: "\"invite_only\"",
        public: true,
    },
    SettingDef {
        key: "messages.max_bytes",
        ty: SettingType::Int {
            min: 1,
            max: 1 << 20,
        },
        default: "16384",
        public: true,
    },
    SettingDef {
        key: "uploads.max_bytes",
        ty: SettingType::Int {
            min: 1,
            max: 1 << 32,
        },
        default: "26214400",
        public: true,
    },
    SettingDef {
        key: "ratelimit.login_per_account_per_min",
        ty: SettingType::Int {
            min: 1,
            max: 100_000,
        },
        default: "10",
        public: false,
    },
    SettingDef {
        key: "ratelimit.login_per_ip_per_min",
        ty: SettingType::Int {
            min: 1,
            max: 100_000,
        },
        default: "30",
        public: false,
    },
    SettingDef {
        key: "ratelimit.otr_offers_per_min",
        ty: SettingType::Int {
            min: 1,
            max: 10_000,
        },
        default: "5",
        public: false,
    },
    SettingDef {
        key: "ratelimit.otr_frames_per_sec",
        ty: SettingType::Int {
            min: 1,
            max: 100_000,
        },
        default: "50",
        public: false,
    },
    SettingDef {
        key: "ratelimit.otr_frame_burst",
        ty: SettingType::Int {
            min: 1,
            max: 100_000,
        },
        default: "200",
        public: false,
    },
];

fn def(key: &str) -> Option<&'static SettingDef> {
    REGISTRY.iter().find(|d| d.key == key)
}

fn validate(d: &SettingDef, v: &Value) -> Result<(), ApiError> {
    let ok = match d.ty {
        SettingType::Bool => v.is_boolean(),
        SettingType::Int { min, max } => v.as_u64().is_some_and(|n| n >= min && n <= max),
        SettingType::Choice(options) => v.as_str().is_some_and(|s| options.contains(&s)),
    };
    if ok {
        Ok(())
    } else {
        let expected = match d.ty {
            SettingType::Bool => "a boolean".to_string(),
            SettingType::Int { min, max } => format!("an integer in {min}..={max}"),
            SettingType::Choice(o) => format!("one of {o:?}"),
        };
        Err(ApiError::new(
            ErrorCode::InvalidSetting,
            format!("{} must be {expected}", d.key),
        ))
    }
}

/// The settings read on every relayed packet, as they stand now (see [`Settings::otr`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OtrLimits {
    /// `otr.enabled`.
    pub enabled: bool,
    /// `otr.max_frame_bytes`.
    pub max_frame_bytes: usize,
    /// `ratelimit.otr_frames_per_sec` (at least 1).
    pub frames_per_sec: f64,
    /// `ratelimit.otr_frame_burst` (at least 1).
    pub frame_burst: f64,
}

/// The hot settings as atomics, rewritten from the cache whenever it changes: the relay reads
/// them for every packet, which must cost neither a lock nor a string lookup nor a JSON value.
/// Each field is read on its own (a reader may see one change before another of the same
/// update, as it could with two lookups in the map).
#[derive(Debug, Default)]
struct HotSettings {
    otr_enabled: AtomicBool,
    otr_max_frame_bytes: AtomicU64,
    otr_frames_per_sec: AtomicU64,
    otr_frame_burst: AtomicU64,
}

impl HotSettings {
    fn store(&self, map: &BTreeMap<String, Value>) {
        let int = |k: &str| map.get(k).and_then(Value::as_u64).unwrap_or(0);
        let flag = map
            .get("otr.enabled")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        self.otr_enabled.store(flag, Ordering::Relaxed);
        self.otr_max_frame_bytes
            .store(int("otr.max_frame_bytes"), Ordering::Relaxed);
        self.otr_frames_per_sec
            .store(int("ratelimit.otr_frames_per_sec"), Ordering::Relaxed);
        self.otr_frame_burst
            .store(int("ratelimit.otr_frame_burst"), Ordering::Relaxed);
    }
}

/// The settings service.
#[derive(Clone)]
pub struct Settings {
    db: Db,
    cache: Arc<RwLock<BTreeMap<String, Value>>>,
    hot: Arc<HotSettings>,
    /// Serialises updates, so each one builds its pushed view on top of the previous one.
    updating: Arc<tokio::sync::Mutex<()>>,
}

impl Settings {
    /// Loads the stored values over the defaults.
    pub async fn load(db: Db) -> anyhow::Result<Settings> {
        let mut map = BTreeMap::new();
        for d in REGISTRY {
            map.insert(d.key.to_string(), serde_json::from_str(d.default)?);
        }
        let rows = db.settings().await.map_err(|e| anyhow::anyhow!("{e}"))?;
        for (k, v) in rows {
            if let (Some(d), Ok(v)) = (def(&k), serde_json::from_str::<Value>(&v))
                && validate(d, &v).is_ok()
            {
                map.insert(k, v);
            }
        }
        let hot = HotSettings::default();
        hot.store(&map);
        Ok(Settings {
            db,
            cache: Arc::new(RwLock::new(map)),
            hot: Arc::new(hot),
            updating: Arc::default(),
        })
    }

    /// The OTR relay's per-packet settings, without a lock or a lookup.
    pub fn otr(&self) -> OtrLimits {
        let h = &self.hot;
        OtrLimits {
            enabled: h.otr_enabled.load(Ordering::Relaxed),
            max_frame_bytes: h.otr_max_frame_bytes.load(Ordering::Relaxed) as usize,
            frames_per_sec: h.otr_frames_per_sec.load(Ordering::Relaxed).max(1) as f64,
            frame_burst: h.otr_frame_burst.load(Ordering::Relaxed).max(1) as f64,
        }
    }

    fn get(&self, key: &str) -> Value {
        self.cache
            .read()
            .map(|m| m.get(key).cloned().unwrap_or(Value::Null))
            .unwrap_or(Value::Null)
    }

    /// An integer setting.
    pub fn int(&self, key: &str) -> u64 {
        self.get(key).as_u64().unwrap_or(0)
    }

    /// A boolean setting.
    pub fn flag(&self, key: &str) -> bool {
        self.get(key).as_bool().unwrap_or(false)
    }

    /// A string setting.
    pub fn text(&self, key: &str) -> String {
        self.get(key).as_str().unwrap_or_default().to_string()
    }

    /// Every setting (admins).
    pub fn all(&self) -> SettingsMap {
        self.cache.read().map(|m| m.clone()).unwrap_or_default()
    }

    /// The public subset.
    pub fn public(&self) -> SettingsMap {
        let all = self.all();
        all.into_iter()
            .filter(|(k, _)| def(k).is_some_and(|d| d.public))
            .collect()
    }

    /// Validates and stores `changes` atomically (all or nothing), then pushes the public
    /// settings to every connection.
    pub async fn update(&self, changes: SettingsMap) -> ApiResult<SettingsMap> {
        for (k, v) in &changes {
            let d = def(k).ok_or_else(|| {
                ApiError::new(ErrorCode::UnknownSetting, format!("unknown setting {k}"))
            })?;
            validate(d, v)?;
        }
        // Held until the cache is updated: a concurrent update waits, then starts from this
        // one's result, so the last view pushed to clients holds every change.
        let _updating = self.updating.lock().await;
        let mut next = self.all();
        for (k, v) in &changes {
            next.insert(k.clone(), v.clone());
        }
        let public: SettingsMap = next
            .iter()
            .filter(|(k, _)| def(k).is_some_and(|d| d.public))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let json: Arc<str> =
            serde_json::to_string(&ServerEvent::SettingsChanged { settings: public })
                .map_err(ApiError::internal)?
                .into();
        let stored = changes.clone();
        self.db
            .write(move |tx, outbox| {
                Box::pin(async move {
                    let now = now_ms();
                    for (k, v) in &stored {
                        tx.upsert_setting(k, &v.to_string(), now).await?;
                    }
                    outbox.push(BusMessage::Everyone {
                        frame: Frame::Text { json, seq: None },
                    });
                    Ok(())
                })
            })
            .await?;
        // Only after the commit: a failed write leaves the cache as it was.
        if let Ok(mut m) = self.cache.write() {
            m.extend(changes);
            self.hot.store(&m);
        }
        Ok(self.all())
    }
}
