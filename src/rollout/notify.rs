//! `notify.webhook`: a JSON POST per rollout event, Slack-compatible (`text`) with structured
//! fields. A webhook that fails or hangs is logged and never blocks the rollout or a rollback.

use std::time::Duration;

/// Posts `event` to `url` (5 s limit); failures are logged at warn level.
pub async fn webhook(client: &reqwest::Client, url: &str, event: &serde_json::Value) {
    let sent = client
        .post(url)
        .timeout(Duration::from_secs(5))
        .json(event)
        .send()
        .await;
    match sent {
        Ok(r) if r.status().is_success() => {}
        Ok(r) => tracing::warn!("rollout webhook {url} answered {}", r.status()),
        Err(e) => tracing::warn!("rollout webhook {url} failed: {e}"),
    }
}
