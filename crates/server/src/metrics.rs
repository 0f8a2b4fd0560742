//! The Prometheus metrics of SPEC 6.6, with their fixed names. Counters and the duration
//! histogram are kept as things happen; the gauges derived from the state (replica age,
//! replicated or not, drills) are computed from the store at each scrape, so that every
//! worker on one database shows the same values (aggregate them with `max`).

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use snaprelay_core::model::SnapshotKind;
use snaprelay_core::policy::Policy;
use snaprelay_core::report::{PointStatus, RecordedRestorePoint};
use snaprelay_core::runtime::clock::parse_rfc3339;
use snaprelay_core::status::Status;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PolicyLabel {
    pub policy: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PolicyStatus {
    pub policy: String,
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResourcePlace {
    pub policy: String,
    pub resource: String,
    pub account: String,
    pub region: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Call {
    pub service: String,
    pub operation: String,
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CopyPlace {
    pub service: String,
    pub account: String,
    pub region: String,
}

type FloatGauge = Gauge<f64, AtomicU64>;

fn duration_buckets() -> Histogram {
    // 1 s to about 9 hours.
    Histogram::new(exponential_buckets(1.0, 2.0, 16))
}

/// Every metric `serve` exports.
pub struct Metrics {
    registry: Registry,
    pub sessions: Family<PolicyStatus, Counter>,
    pub session_duration: Family<PolicyLabel, Histogram, fn() -> Histogram>,
    pub skipped_ticks: Family<PolicyLabel, Counter>,
    pub next_run: Family<PolicyLabel, FloatGauge>,
    pub aws_calls: Family<Call, Counter>,
    pub copies_in_flight: Family<CopyPlace, Gauge>,
    /// Bytes the sessions' copies moved, per destination (SPEC 6.5).
    pub bytes_copied: Family<CopyPlace, Counter>,
    pub replica_age: Family<ResourcePlace, FloatGauge>,
    pub replicated: Family<ResourcePlace, Gauge>,
    pub drill_rto: Family<ResourcePlace, FloatGauge>,
    pub drill_last_success: Family<ResourcePlace, FloatGauge>,
    pub leases_held: Gauge,
    /// Interrupted sessions this worker resumed because their lease had lapsed.
    pub lease_takeovers: Family<PolicyLabel, Counter>,
    /// 1 while the state store answers this worker, else 0.
    pub store_up: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let m = Metrics {
            sessions: Family::default(),
            session_duration: Family::new_with_constructor(duration_buckets),
            skipped_ticks: Family::default(),
            next_run: Family::default(),
            aws_calls: Family::default(),
            copies_in_flight: Family::default(),
            bytes_copied: Family::default(),
            replica_age: Family::default(),
            replicated: Family::default(),
            drill_rto: Family::default(),
            drill_last_success: Family::default(),
            leases_held: Gauge::default(),
            lease_takeovers: Family::default(),
            store_up: Gauge::default(),
            registry: Registry::default(),
        };
        // Counters are exported with the `_total` suffix Prometheus expects.
        registry.register(
            "snaprelay_sessions",
            "Sessions ended or interrupted, by status",
            m.sessions.clone(),
        );
        registry.register(
            "snaprelay_session_duration_seconds",
            "How long sessions took",
            m.session_duration.clone(),
        );
        registry.register(
            "snaprelay_skipped_ticks",
            "Schedule ticks skipped because a session of the policy was still running",
            m.skipped_ticks.clone(),
        );
        registry.register(
            "snaprelay_next_run_timestamp_seconds",
            "When the policy's next scheduled session starts (Unix time)",
            m.next_run.clone(),
        );
        registry.register(
            "snaprelay_aws_calls",
            "Calls to AWS, by service, operation and outcome (ok or the error code)",
            m.aws_calls.clone(),
        );
        registry.register(
            "snaprelay_copies_in_flight",
            "Snapshot copies this worker's sessions have under way, per destination",
            m.copies_in_flight.clone(),
        );
        registry.register(
            "snaprelay_bytes_copied",
            "Bytes copied to each destination (full copies at the snapshot's size, incremental \
             ones at the blocks that changed; added when the session has measured its copies)",
            m.bytes_copied.clone(),
        );
        registry.register(
            "snaprelay_replica_age_seconds",
            "Now minus the creation of the newest complete replica: the achieved RPO",
            m.replica_age.clone(),
        );
        registry.register(
            "snaprelay_resource_replicated",
            "1 once a complete replica of the resource exists in the place, else 0",
            m.replicated.clone(),
        );
        registry.register(
            "snaprelay_drill_rto_seconds",
            "The recovery time the newest drill measured",
            m.drill_rto.clone(),
        );
        registry.register(
            "snaprelay_drill_last_success_timestamp_seconds",
            "When a drill of the resource in the place last passed (Unix time)",
            m.drill_last_success.clone(),
        );
        registry.register(
            "snaprelay_worker_leases_held",
            "Policies whose lease this worker holds (sessions and drills running here)",
            m.leases_held.clone(),
        );
        registry.register(
            "snaprelay_worker_lease_takeovers",
            "Interrupted sessions this worker resumed after their holder's lease lapsed",
            m.lease_takeovers.clone(),
        );
        registry.register(
            "snaprelay_worker_state_store_up",
            "1 while the state store answers this worker, else 0 (no new work starts then)",
            m.store_up.clone(),
        );
        Metrics { registry, ..m }
    }
}

impl Metrics {
    /// The metrics in the OpenMetrics text format (what Prometheus asks for first in its
    /// `Accept` header).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }

    /// The metrics in the Prometheus text format 0.0.4 (SPEC 6.6), what a scrape without an
    /// OpenMetrics `Accept` header gets.
    pub fn encode_prometheus(&self) -> String {
        prometheus_text(&self.encode())
    }

    /// Sets the gauges derived from the restore points of `policies`, at `now` (Unix time).
    pub fn derive(&self, policies: &[Policy], points: &[RecordedRestorePoint], now: u64) {
        // Each policy's counters and histogram show from the start, at zero, so that an
        // alert on them (or a rate) has a series before the first session or skipped tick;
        // a session ends in one of four known statuses (SPEC 6.6).
        for p in policies {
            let label = PolicyLabel {
                policy: p.name.clone(),
            };
            let _ = self.skipped_ticks.get_or_create(&label);
            let _ = self.session_duration.get_or_create(&label);
            let ended = [Status::Success, Status::Warning, Status::Failed].map(Status::as_str);
            for status in ended.into_iter().chain([snaprelay_core::app::INTERRUPTED]) {
                let _ = self.sessions.get_or_create(&PolicyStatus {
                    policy: p.name.clone(),
                    status: status.to_owned(),
                });
            }
        }
        self.replica_age.clear();
        self.replicated.clear();
        self.drill_rto.clear();
        self.drill_last_success.clear();
        // Per policy and resource: the places it should be in (each target, as the points
        // name its account), and the newest complete replica in each.
        let mut newest: BTreeMap<(String, String, String, String), u64> = BTreeMap::new();
        let mut places: BTreeMap<(String, String), Vec<(String, String)>> = BTreeMap::new();
        for p in points {
            let key = (p.point.policy.clone(), p.point.resource_id.clone());
            let place = (p.point.place.account.clone(), p.point.place.region.clone());
            if p.point.kind == SnapshotKind::Source {
                places.entry(key).or_default();
                continue;
            }
            let list = places.entry(key).or_default();
            if !list.contains(&place) {
                list.push(place.clone());
            }
            if p.status != PointStatus::Complete {
                continue;
            }
            let Some(created) = parse_rfc3339(&p.point.created_at) else {
                continue;
            };
            let slot = newest
                .entry((
                    p.point.policy.clone(),
                    p.point.resource_id.clone(),
                    place.0,
                    place.1,
                ))
                .or_default();
            *slot = (*slot).max(created);
            if let Some(d) = &p.last_drill {
                let labels = labels(p);
                if let Some(rto) = d.rto_seconds {
                    self.drill_rto.get_or_create(&labels).set(rto);
                }
                if d.status == "Passed"
                    && let Some(at) = parse_rfc3339(&d.at)
                {
                    let g = self.drill_last_success.get_or_create(&labels);
                    g.set(g.get().max(at as f64));
                }
            }
        }
        for ((policy, resource), mut seen) in places {
            let Some(p) = policies.iter().find(|p| p.name == policy) else {
                continue;
            };
            // A target no replica reached yet, named by its declared account.
            for t in &p.targets {
                if let Some(a) = t.declared_account()
                    && !seen
                        .iter()
                        .any(|(acc, r)| acc == a.as_str() && r == &t.region)
                {
                    seen.push((a.to_string(), t.region.clone()));
                }
            }
            for (account, region) in seen {
                let key = (policy.clone(), resource.clone(), account, region);
                let labels = ResourcePlace {
                    policy: key.0.clone(),
                    resource: key.1.clone(),
                    account: key.2.clone(),
                    region: key.3.clone(),
                };
                match newest.get(&key) {
                    Some(created) => {
                        self.replicated.get_or_create(&labels).set(1);
                        self.replica_age
                            .get_or_create(&labels)
                            .set(now.saturating_sub(*created) as f64);
                    }
                    None => {
                        self.replicated.get_or_create(&labels).set(0);
                    }
                }
            }
        }
    }
}

fn labels(p: &RecordedRestorePoint) -> ResourcePlace {
    ResourcePlace {
        policy: p.point.policy.clone(),
        resource: p.point.resource_id.clone(),
        account: p.point.place.account.clone(),
        region: p.point.place.region.clone(),
    }
}

/// Copies in flight, told by the engine's copy slots, and the bytes copied, told by a run once
/// it has measured its copies.
pub struct CopiesInFlight(pub std::sync::Arc<Metrics>);

impl snaprelay_core::runtime::SlotWatch for CopiesInFlight {
    fn in_flight(
        &self,
        service: snaprelay_core::report::Service,
        account: &snaprelay_core::ids::AccountId,
        region: &str,
        change: i64,
    ) {
        self.0
            .copies_in_flight
            .get_or_create(&CopyPlace {
                service: service.to_string(),
                account: account.to_string(),
                region: region.to_owned(),
            })
            .inc_by(change);
    }

    fn copied(
        &self,
        service: snaprelay_core::report::Service,
        account: &snaprelay_core::ids::AccountId,
        region: &str,
        bytes: u64,
    ) {
        self.0
            .bytes_copied
            .get_or_create(&CopyPlace {
                service: service.to_string(),
                account: account.to_string(),
                region: region.to_owned(),
            })
            .inc_by(bytes);
    }
}

/// OpenMetrics text into the Prometheus text format 0.0.4: no `# EOF` or `# UNIT` lines, and a
/// counter's `# HELP` and `# TYPE` name its samples (`x_total`), not the OpenMetrics family
/// (`x`), so that a parser of the older format types the samples as counters. Only counters,
/// gauges and histograms are registered here (a test holds every family to those types):
/// the older format has no info or state set.
fn prometheus_text(openmetrics: &str) -> String {
    let counters: std::collections::BTreeSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let meta = ["# HELP ", "# TYPE "]
            .into_iter()
            .find_map(|p| line.strip_prefix(p).map(|rest| (p, rest)));
        match meta {
            Some((p, rest)) => {
                let (name, tail) = rest.split_once(' ').map_or((rest, ""), |(n, t)| (n, t));
                // OpenMetrics' `unknown` is the older format's `untyped`.
                let tail = if p == "# TYPE " && tail == "unknown" {
                    "untyped"
                } else {
                    tail
                };
                out.push_str(p);
                out.push_str(name);
                if counters.contains(name) {
                    out.push_str("_total");
                }
                if !tail.is_empty() {
                    out.push(' ');
                    out.push_str(tail);
                }
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prometheus_text_types_counter_samples_and_has_no_eof() {
        let m = Metrics::default();
        let label = PolicyStatus {
            policy: "dr".into(),
            status: "Success".into(),
        };
        m.sessions.get_or_create(&label).inc();
        let policy = Policy::from_toml(
            r#"name = "dr"
[source]
regions = ["us-east-1"]
[[source.resources]]
type = "ec2"
ids = ["i-0123456789abcdef0"]
[[targets]]
region = "eu-west-1"
"#,
        )
        .unwrap();
        m.derive(&[policy], &[], 0);
        let open = m.encode();
        assert!(
            open.contains("# TYPE snaprelay_sessions counter\n"),
            "{open}"
        );
        assert!(open.ends_with("# EOF\n"), "{open}");

        let text = m.encode_prometheus();
        for line in [
            "# TYPE snaprelay_sessions_total counter",
            "snaprelay_sessions_total{policy=\"dr\",status=\"Success\"} 1",
            "# TYPE snaprelay_skipped_ticks_total counter",
            "snaprelay_skipped_ticks_total{policy=\"dr\"} 0",
            "# TYPE snaprelay_session_duration_seconds histogram",
            "snaprelay_session_duration_seconds_count{policy=\"dr\"} 0",
            "snaprelay_sessions_total{policy=\"dr\",status=\"Failed\"} 0",
            "snaprelay_sessions_total{policy=\"dr\",status=\"Interrupted\"} 0",
            "# TYPE snaprelay_worker_state_store_up gauge",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing from\n{text}"
            );
        }
        assert!(text.contains("# HELP snaprelay_sessions_total "), "{text}");
        assert!(
            !text.contains("# EOF") && !text.contains("# UNIT"),
            "{text}"
        );
        for family in text.lines().filter_map(|l| l.strip_prefix("# TYPE ")) {
            let kind = family.rsplit(' ').next().unwrap();
            assert!(
                ["counter", "gauge", "histogram"].contains(&kind),
                "{family}: a type the 0.0.4 format would reject or misread"
            );
        }
        // Every sample's family is typed, as a parser of the 0.0.4 format reads it.
        let typed: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split(' ').next())
            .collect();
        for sample in text.lines().filter(|l| !l.starts_with('#')) {
            let name = sample.split(['{', ' ']).next().unwrap();
            assert!(
                typed.iter().any(|t| name == *t
                    || ["_bucket", "_sum", "_count"]
                        .iter()
                        .any(|s| name.strip_suffix(s) == Some(*t))),
                "{sample}: no # TYPE for it"
            );
        }
    }
}
