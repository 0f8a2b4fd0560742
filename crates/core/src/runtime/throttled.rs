//! Throttling, retried. AWS answers `RequestLimitExceeded` (EC2) or `Throttling` (RDS, KMS, STS)
//! when a request rate is exceeded; the SDK retries a few times, and a fleet-sized session can
//! outlast that. Every call goes through [`Throttled`], which retries throttled calls with
//! exponential backoff and jitter (SPEC section 3) before giving up.
//!
//! Only throttling is retried here. Quota refusals (`ResourceLimitExceeded`, ...) are the
//! workflows' to handle (they wait for copy slots), and any other error is an answer.
//!
//! It is also where the calls that change AWS can be observed: a [`ChangeHook`] is told of
//! each one that succeeded (the crash tests abort the process there). Each call is logged at
//! debug level with its service, operation, Region, duration and outcome (never a credential:
//! the call's arguments are not logged).

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use super::jitter;
use crate::ports::{Call, CloudError, Layer, Layered};

/// Attempts per call before the throttling error is returned.
const ATTEMPTS: u32 = 8;
const FIRST_WAIT: Duration = Duration::from_millis(500);
const LONGEST_WAIT: Duration = Duration::from_secs(20);

/// Told the operation name (`CopySnapshot`, ...) of each call that changed AWS, once AWS has
/// answered it successfully.
#[derive(Clone)]
pub struct ChangeHook(pub Arc<dyn Fn(&'static str) + Send + Sync>);

impl fmt::Debug for ChangeHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ChangeHook")
    }
}

/// The layer every call leaves for AWS through: retries throttling, logs, tells the hook.
#[derive(Clone, Debug, Default)]
pub struct Retry {
    after_change: Option<ChangeHook>,
}

/// A cloud whose throttled calls are retried: `Throttled<Arc<dyn Cloud>>` in the application,
/// `Throttled<&SimCloud>` in a test that drives the engine itself. Wrapped once, where calls
/// leave for AWS; nothing under it retries throttling again.
pub type Throttled<C> = Layered<Retry, C>;

impl<C> Layered<Retry, C> {
    pub fn new(inner: C) -> Self {
        Self::with_hook(inner, None)
    }

    pub fn with_hook(inner: C, after_change: Option<ChangeHook>) -> Self {
        Layered {
            layer: Retry { after_change },
            inner,
        }
    }
}

impl Layer for Retry {
    async fn around<T, F, Fut>(&self, call: Call<'_>, make: F) -> Result<T, CloudError>
    where
        T: Send,
        F: Fn() -> Fut + Send + Sync,
        Fut: Future<Output = Result<T, CloudError>> + Send,
    {
        let started = tokio::time::Instant::now();
        let mut wait = FIRST_WAIT;
        let mut attempt = 1;
        let result = loop {
            match make().await {
                Err(e) if e.is_throttling() && attempt < ATTEMPTS => {
                    tracing::debug!(
                        service = call.service,
                        operation = call.operation,
                        region = call.region,
                        attempt,
                        error = %e,
                        "throttled; trying again"
                    );
                    tokio::time::sleep(jitter(wait)).await;
                    wait = (wait * 2).min(LONGEST_WAIT);
                    attempt += 1;
                }
                other => break other,
            }
        };
        tracing::debug!(
            service = call.service,
            operation = call.operation,
            region = call.region,
            attempts = attempt,
            duration_ms = started.elapsed().as_millis() as u64,
            outcome = match &result {
                Ok(_) => "ok",
                Err(e) => e.code.as_deref().unwrap_or("error"),
            },
            "aws call"
        );
        if let (true, Ok(_), Some(hook)) = (call.changes_aws, &result, &self.after_change) {
            (hook.0)(call.operation);
        }
        result
    }
}
