//! Waiting for what a restore or drill made to be usable: one look at a time, with progress,
//! until it is, it never will be, or the time is up.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::ports::{CloudError, ClusterStatus, DbStatus, Find, MachineStatus, VolumeStatus};

use super::super::App;
use super::Where;

/// How long a restore waits for what it made to be usable, and how often it looks.
#[derive(Clone, Copy, Debug)]
pub struct Waiting {
    pub poll: Duration,
    pub timeout: Duration,
}

impl Default for Waiting {
    fn default() -> Self {
        Self {
            poll: Duration::from_secs(5),
            timeout: Duration::from_secs(60 * 60),
        }
    }
}

/// How long a call about something just made is retried while EC2 does not see it yet.
const VISIBILITY_PATIENCE: Duration = Duration::from_secs(60);

/// EC2 is eventually consistent: what a call just made (an image, a security group) may be
/// unknown to the next call for a while, which answers `code` (`InvalidAMIID.NotFound`,
/// `InvalidGroup.NotFound`); AWS advises retrying with a backoff
/// (https://docs.aws.amazon.com/ec2/latest/devguide/eventual-consistency.html). Retries `call`
/// on that code alone, from 0.5 s doubling to 8 s, for up to a minute.
pub(crate) async fn once_visible<T, F, Fut>(code: &str, call: F) -> Result<T, CloudError>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<T, CloudError>>,
{
    let began = Instant::now();
    let mut delay = Duration::from_millis(500);
    loop {
        match call().await {
            Err(e) if e.code.as_deref() == Some(code) && began.elapsed() < VISIBILITY_PATIENCE => {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(8));
            }
            other => return other,
        }
    }
}

/// Progress lines for people (stderr).
pub type ProgressFn<'a> = &'a (dyn Fn(&str) + Send + Sync);

/// What a wait sees on one look.
pub(crate) enum Look<T> {
    Ready(T),
    /// Not yet, in this state.
    Pending(String),
    /// Will never be: why.
    Failed(String),
}

/// Looks every `poll` until ready, failed, or `timeout` after `since`.
pub(crate) async fn wait_for<T, F, Fut>(
    waiting: Waiting,
    since: Instant,
    what: &str,
    progress: ProgressFn<'_>,
    mut look: F,
) -> Result<T, String>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Look<T>, CloudError>>,
{
    let mut last = String::new();
    loop {
        match look().await {
            Ok(Look::Ready(t)) => return Ok(t),
            Ok(Look::Failed(why)) => return Err(format!("{what}: {why}")),
            Ok(Look::Pending(state)) => {
                if state != last {
                    progress(&format!("{what}: {state}"));
                    last = state;
                }
            }
            // A look that fails is not the end: the next one may answer.
            Err(e) => progress(&format!("{what}: {e}")),
        }
        if since.elapsed() >= waiting.timeout {
            return Err(format!(
                "{what}: not usable after {} s (last state {})",
                waiting.timeout.as_secs(),
                if last.is_empty() { "unknown" } else { &last }
            ));
        }
        tokio::time::sleep(waiting.poll).await;
    }
}

/// Waits until the instance runs; it failing to (terminated, or stopped: it shut itself down as
/// it booted, and nothing starts it again) or the timeout is the `Err`.
pub(crate) async fn until_running(
    app: &App,
    at: &Where,
    id: &str,
    waiting: Waiting,
    since: Instant,
    what: &str,
    progress: ProgressFn<'_>,
) -> Result<MachineStatus, String> {
    let ids = [id.to_owned()];
    wait_for(waiting, since, what, progress, || async {
        let found = app
            .cloud
            .find_machines(&at.access, &at.place.region, &Find::Ids(&ids))
            .await?;
        Ok(match found.into_iter().next() {
            Some(m) if m.state == "running" => Look::Ready(m),
            Some(m) if matches!(m.state.as_str(), "terminated" | "shutting-down") => {
                Look::Failed(format!("it is {}", m.state))
            }
            Some(m) if matches!(m.state.as_str(), "stopping" | "stopped") => Look::Failed(format!(
                "it is {}: it shut itself down as it booted (its console output, `aws ec2 \
                     get-console-output --instance-id {}`, says why)",
                m.state, m.id
            )),
            Some(m) => Look::Pending(m.state),
            None => Look::Pending("not yet listed".into()),
        })
    })
    .await
}

/// Waits until every volume is `available`; one in `error` or the timeout is the `Err`.
pub(crate) async fn until_available(
    app: &App,
    at: &Where,
    ids: &[String],
    waiting: Waiting,
    since: Instant,
    what: &str,
    progress: ProgressFn<'_>,
) -> Result<Vec<VolumeStatus>, String> {
    wait_for(waiting, since, what, progress, || async {
        let found = app
            .cloud
            .find_volumes(&at.access, &at.place.region, &Find::Ids(ids))
            .await?;
        if let Some(bad) = found.iter().find(|v| v.state == "error") {
            return Ok(Look::Failed(format!("volume {} is in error", bad.id)));
        }
        let ready = found.iter().filter(|v| v.state == "available").count();
        Ok(if ready == ids.len() {
            Look::Ready(found)
        } else {
            Look::Pending(format!("{ready} of {} available", ids.len()))
        })
    })
    .await
}

/// Waits until the DB instance is `available`; a state it never leaves (`failed`,
/// `incompatible-…`) or the timeout is the `Err`.
pub(crate) async fn until_db_available(
    app: &App,
    at: &Where,
    id: &str,
    waiting: Waiting,
    since: Instant,
    what: &str,
    progress: ProgressFn<'_>,
) -> Result<DbStatus, String> {
    let ids = [id.to_owned()];
    wait_for(waiting, since, what, progress, || async {
        let found = app
            .cloud
            .find_dbs(&at.access, &at.place.region, &Find::Ids(&ids))
            .await?;
        Ok(match found.into_iter().next() {
            Some(d) if d.status == "available" => Look::Ready(d),
            Some(d)
                if matches!(
                    d.status.as_str(),
                    "failed"
                        | "incompatible-restore"
                        | "incompatible-parameters"
                        | "incompatible-network"
                        | "deleting"
                ) =>
            {
                Look::Failed(format!("it is {}", d.status))
            }
            Some(d) => Look::Pending(d.status),
            None => Look::Pending("not yet listed".into()),
        })
    })
    .await
}

/// Waits until the Aurora cluster is `available`; a state it does not leave by itself
/// (`inaccessible-encryption-credentials`, `incompatible-…`, `failed`, `deleting`) or the
/// timeout is the `Err`.
/// https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/accessing-monitoring.html#Aurora.Status
pub(crate) async fn until_cluster_available(
    app: &App,
    at: &Where,
    id: &str,
    waiting: Waiting,
    since: Instant,
    what: &str,
    progress: ProgressFn<'_>,
) -> Result<ClusterStatus, String> {
    let ids = [id.to_owned()];
    wait_for(waiting, since, what, progress, || async {
        let found = app
            .cloud
            .find_clusters(&at.access, &at.place.region, &Find::Ids(&ids))
            .await?;
        Ok(match found.into_iter().next() {
            Some(c) if c.status == "available" => Look::Ready(c),
            // The SDK waiter's failure states, and the Aurora User Guide's failed ones.
            Some(c)
                if matches!(
                    c.status.as_str(),
                    "failed" | "deleting" | "deleted" | "migration-failed" | "cloning-failed"
                ) || c.status.starts_with("inaccessible-encryption-credentials")
                    || c.status.starts_with("incompatible-") =>
            {
                Look::Failed(format!("it is {}", c.status))
            }
            Some(c) => Look::Pending(c.status),
            None => Look::Pending("not yet listed".into()),
        })
    })
    .await
}
