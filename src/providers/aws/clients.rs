//! What every AWS client shares: the SDK configuration from the standard chain, a retry policy
//! built for throttling storms, and a hook that counts each call and attempt.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_sdk_ecs::config::retry::{RetryPartition, TokenBucket};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

use crate::providers::CallLog;

/// Attempts per AWS call: throttling in large accounts needs more than the SDK's default 3.
const MAX_ATTEMPTS: u32 = 10;

/// The SDK configuration and the settings every service client adds to it.
#[derive(Clone)]
pub struct Shared {
    /// Region, credentials, endpoint (`AWS_ENDPOINT_URL` honoured), retry policy.
    pub sdk: aws_config::SdkConfig,
    /// One retry partition for all clients, with no retry quota (see [`Shared::load`]).
    pub partition: RetryPartition,
    /// Counts calls for `-v` and the benchmark.
    pub counter: CallCounter,
    /// Calls in flight at most, per batch of reads.
    pub parallelism: usize,
}

impl Shared {
    /// Loads the standard chain for `region`. Retries: standard mode (exponential backoff with
    /// jitter, 200 ms doubling to at most 20 s), 10 attempts, and no retry quota: the SDK's
    /// default token bucket stops retrying once ~100 retries failed in a row, which a sustained
    /// throttling storm during a large apply reaches; bounded attempts and backoff keep the
    /// pressure down instead.
    pub async fn load(region: &str, parallelism: usize, calls: CallLog) -> Shared {
        let retry = RetryConfig::standard()
            .with_max_attempts(MAX_ATTEMPTS)
            .with_initial_backoff(Duration::from_millis(200))
            .with_max_backoff(Duration::from_secs(20));
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(region.to_string()))
            .retry_config(retry)
            .load()
            .await;
        Shared {
            sdk,
            partition: RetryPartition::custom("converge")
                .token_bucket(TokenBucket::unlimited())
                .build(),
            counter: CallCounter(calls),
            parallelism: parallelism.max(1),
        }
    }
}

/// Builds a service client from [`Shared`]: `client!(shared, aws_sdk_ecr)`.
macro_rules! client {
    ($shared:expr, $sdk:ident) => {
        $sdk::Client::from_conf(
            $sdk::config::Builder::from(&$shared.sdk)
                .retry_partition($shared.partition.clone())
                .interceptor($shared.counter.clone())
                .build(),
        )
    };
}
pub(crate) use client;

/// An SDK interceptor that records each operation and each HTTP attempt in a [`CallLog`].
#[derive(Debug, Clone)]
pub struct CallCounter(CallLog);

fn operation(cfg: &ConfigBag) -> String {
    cfg.load::<Metadata>()
        .map(|m| format!("{}:{}", m.service(), m.name()))
        .unwrap_or_else(|| "unknown".into())
}

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "ConvergeCallCounter"
    }

    fn read_before_execution(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.call(&operation(cfg));
        Ok(())
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.attempt(&operation(cfg));
        Ok(())
    }
}
