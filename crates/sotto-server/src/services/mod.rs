//! Services hold the logic. Each owns its tables and is the only code that writes them;
//! handlers reach data only through services, and services reach the database only through
//! [`crate::storage`] and other services.

pub mod accounts;
pub mod e2e;
pub mod events;
pub mod messages;
pub mod otr_relay;
pub mod presence;
pub mod room_keys;
pub mod rooms;
pub mod search;
pub mod settings;
pub mod uploads;
