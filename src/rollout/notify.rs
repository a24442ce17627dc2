//! `notify.webhook`: a JSON POST per rollout event, Slack-compatible (`text`) with structured
//! fields. A webhook that fails or hangs is logged and never blocks the rollout or a rollback.

use std::time::Duration;

/// Posts `event` to `url` (5 s limit); failures are logged at warn level, naming only the
/// URL's host.
pub async fn webhook(client: &reqwest::Client, url: &str, event: &serde_json::Value) {
    let sent = client
        .post(url)
        .timeout(Duration::from_secs(5))
        .json(event)
        .send()
        .await;
    // The URL is often a secret (a Slack webhook's path is its key): the log names only its
    // host, and the error is printed without the URL reqwest would add.
    let host = reqwest::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_else(|| "(unparsable URL)".into());
    match sent {
        Ok(r) if r.status().is_success() => {}
        Ok(r) => tracing::warn!("rollout webhook on {host} answered {}", r.status()),
        Err(e) => tracing::warn!("rollout webhook on {host} failed: {}", e.without_url()),
    }
}
