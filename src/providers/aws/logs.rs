//! CloudWatch Logs: the last lines of a log stream, for a failed hook's error (its task's
//! awslogs stream is `STREAM_PREFIX/CONTAINER/TASK_ID`).

use aws_sdk_cloudwatchlogs::Client;

use super::api_error;
use crate::providers::ProviderError;

/// The CloudWatch Logs client.
pub struct Logs {
    client: Client,
}

impl Logs {
    /// Builds the client from the shared SDK configuration.
    pub fn new(shared: &super::clients::Shared) -> Logs {
        Logs {
            client: super::clients::client!(shared, aws_sdk_cloudwatchlogs),
        }
    }

    /// The last `lines` messages of `stream` in `group`, oldest first (none when the stream
    /// does not exist yet).
    pub async fn tail(
        &self,
        group: &str,
        stream: &str,
        lines: i32,
    ) -> Result<Vec<String>, ProviderError> {
        match self
            .client
            .get_log_events()
            .log_group_name(group)
            .log_stream_name(stream)
            .limit(lines)
            .start_from_head(false)
            .send()
            .await
        {
            Ok(out) => Ok(out
                .events
                .unwrap_or_default()
                .into_iter()
                .filter_map(|e| e.message)
                .collect()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                Ok(Vec::new())
            }
            Err(e) => Err(api_error("logs:GetLogEvents", e)),
        }
    }
}
