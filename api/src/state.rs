//! What every handler shares.

use std::sync::Arc;

use parley_domain::call::Call;
use parley_domain::chat::Chat;
use parley_domain::device::Device;
use parley_domain::inbox::Inbox;
use parley_domain::media::Media;
use parley_domain::session::Session;
use parley_domain::to_device::ToDeviceBatch;
use parley_domain::user::User;
use sqlx::PgPool;
use uuid::Uuid;

use crate::auth::captcha::CaptchaVerifier;
use crate::auth::revocation::Revocations;
use crate::auth::shared_limits::SharedRateLimiter;
use crate::auth::tokens::TokenKeys;
use crate::calls::placement::SfuNodes;
use crate::commands::{CommandBus, ProjectionProgress};
use crate::config::Config;
use crate::ops::metrics::Metrics;

pub struct AppState {
    pub config: Config,
    pub pool: PgPool,
    pub nats: async_nats::Client,
    pub users: CommandBus<User>,
    pub sessions: CommandBus<Session>,
    pub chats: CommandBus<Chat>,
    pub calls: CommandBus<Call>,
    pub media: CommandBus<Media>,
    pub storage: crate::media::storage::MediaStorage,
    pub inboxes: CommandBus<Inbox>,
    pub devices: CommandBus<Device>,
    pub to_device: CommandBus<ToDeviceBatch>,
    pub progress: ProjectionProgress,
    pub tokens: TokenKeys,
    pub revocations: Arc<Revocations>,
    pub limiter: SharedRateLimiter,
    pub typing: crate::realtime::TypingGate,
    /// Every socket of this replica, behind one subscription.
    pub realtime_hub: Arc<crate::realtime::hub::Hub>,
    pub captcha: Option<CaptchaVerifier>,
    pub sfu_nodes: SfuNodes,
    pub metrics: Arc<Metrics>,
    /// The web app's Content-Security-Policy (it names the SFU's origin from the config).
    pub page_csp: String,
}

impl AppState {
    /// Read-your-writes: waits (bounded) until `projection` reflects the aggregate at `version`,
    /// so the caller's next query sees what it just did. On timeout the command has still
    /// succeeded; the read model catches up moments later.
    pub async fn await_projection(&self, projection: &str, aggregate_type: &str, id: Uuid, version: i64) {
        let timeout = self.config.read_your_writes_timeout;
        match self.progress.wait_for(projection, aggregate_type, &id.to_string(), version, timeout).await {
            Ok(true) => {}
            Ok(false) => tracing::warn!(projection, %id, version, "read model did not catch up in time"),
            Err(error) => tracing::warn!(projection, %id, %error, "could not check the read model"),
        }
    }
}
