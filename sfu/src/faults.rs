//! Test-only fault injection, mounted only with `PARLEY_SFU_TEST_FAULTS=1`:
//! `POST /test/blackhole {"user_id", "ms"}` drops every datagram to and from that user's peers
//! for `ms` milliseconds, as a network that went away would (browsers cannot block their own UDP).

use std::sync::Arc;
use std::time::{Duration, Instant};

use poem::http::StatusCode;
use poem::web::{Data, Json};
use poem::{handler, IntoResponse};
use serde::Deserialize;
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::shard::ShardInput;

/// The longest cut one request makes.
const MAX_CUT: Duration = Duration::from_secs(60);

pub(crate) struct Faults {
    pub shards: Vec<mpsc::Sender<ShardInput>>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct BlackholeRequest {
    user_id: Uuid,
    ms: u64,
}

#[handler]
pub(crate) async fn blackhole(
    Json(request): Json<BlackholeRequest>,
    Data(faults): Data<&Arc<Faults>>,
) -> impl IntoResponse {
    let until = Instant::now() + Duration::from_millis(request.ms).min(MAX_CUT);
    for shard in &faults.shards {
        let _ = shard.send(ShardInput::Blackhole { user_id: request.user_id, until }).await;
    }
    StatusCode::NO_CONTENT
}
