//! Several `serve` workers on one PostgreSQL (SPEC 6.7): with a seconds-field schedule, each
//! tick starts exactly one session, whichever worker claims it; never two sessions of the
//! policy at once. The server is a private one started by `scripts/pg-test-server`
//! (Debian's PostgreSQL, installed by `scripts/install-test-deps`), stopped at the end.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use snaprelay_core::app::App;
use snaprelay_core::engine::EngineConfig;
use snaprelay_core::ids::AccountId;
use snaprelay_core::policy::Policy;
use snaprelay_core::ports::{Cloud, StateStore};
use snaprelay_server::{Metrics, Options, Service};
use snaprelay_sim::{Encryption, InstanceSpec, SimCloud, Timing, VolumeSpec};
use snaprelay_state::PgStore;

struct Server {
    dir: PathBuf,
    url: String,
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/pg-test-server")
}

impl Server {
    fn start(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "snaprelay-pg-workers-{name}-{}",
            std::process::id()
        ));
        let out = Command::new(script())
            .arg("start")
            .arg(&dir)
            .output()
            .expect("scripts/pg-test-server runs");
        assert!(
            out.status.success(),
            "the PostgreSQL test server did not start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let url = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        Self { dir, url }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new(script()).arg("stop").arg(&self.dir).status();
    }
}

fn account(s: &str) -> AccountId {
    AccountId::parse(s).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_on_one_database_start_one_session_per_tick() {
    workers_start_one_session_per_tick(2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_workers_on_one_database_start_one_session_per_tick() {
    workers_start_one_session_per_tick(3).await;
}

/// How long the workers run: 6.5 s, or SNAPRELAY_TICK_TEST_SECONDS (to watch a minute:
/// `SNAPRELAY_TICK_TEST_SECONDS=60 cargo test -p snaprelay-server --test workers -- --nocapture`).
fn watched() -> Duration {
    std::env::var("SNAPRELAY_TICK_TEST_SECONDS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 1.0)
        .map_or(Duration::from_millis(6500), Duration::from_secs_f64)
}

/// `count` workers on one database, a policy ticking every second (its sessions take about
/// 0.3 s): each tick starts exactly one session, on whichever worker claims it.
async fn workers_start_one_session_per_tick(count: usize) {
    let server = Server::start(&count.to_string());
    let (src, tgt) = (account("111111111111"), account("222222222222"));
    let cloud = SimCloud::with_seed(&src, 9);
    cloud.add_account(&tgt);
    let ms = Duration::from_millis;
    cloud.set_timing(Timing {
        ebs_snapshot_base: ms(50),
        ebs_snapshot_per_gib: Duration::ZERO,
        ebs_copy_base: ms(100),
        ebs_copy_per_gib: Duration::ZERO,
        spread: 0.0,
        ..Timing::default()
    });
    let key = cloud.create_key(&src, "us-east-1", Some("app"), std::slice::from_ref(&tgt));
    let vault = cloud.create_key(&tgt, "eu-west-1", Some("vault"), &[]);
    let instance = cloud.add_instance(
        &src,
        "us-east-1",
        InstanceSpec {
            volumes: vec![VolumeSpec {
                size_gib: 8,
                encryption: Encryption::Key(key),
            }],
            ..Default::default()
        },
    );
    let policy = Policy::from_toml(&format!(
        r#"name = "dr"
schedule = "* * * * * *"
[source]
regions = ["us-east-1"]
[[source.resources]]
type = "ec2"
ids = ["{instance}"]
[[targets]]
account = "222222222222"
region = "eu-west-1"
role_arn = "arn:aws:iam::222222222222:role/snaprelay-target"
kms_key = "{vault}"
"#
    ))
    .unwrap();
    let cloud: Arc<dyn Cloud> = Arc::new(cloud);
    let mut workers = Vec::new();
    for n in 0..count {
        let store: Arc<dyn StateStore> = Arc::new(PgStore::connect(&server.url).await.unwrap());
        let mut app = App::new(cloud.clone(), store);
        app.holder = format!("worker-{n}");
        app.lease_ttl = Duration::from_secs(5);
        let options = Options {
            policies: "unused.toml".into(),
            listen: "127.0.0.1:0".parse().unwrap(),
            token: None,
            engine: EngineConfig {
                poll_initial: ms(20),
                poll_max: ms(100),
                ..EngineConfig::default()
            },
            drill_poll: ms(50),
        };
        let service = Service::new(
            app,
            vec![policy.clone()],
            &options,
            Arc::new(Metrics::default()),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        tokio::spawn(snaprelay_server::run(service.clone(), listener));
        workers.push(service);
    }
    let watched = watched();
    tokio::time::sleep(watched).await;
    for w in &workers {
        w.stop();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    let store = PgStore::connect(&server.url).await.unwrap();
    let sessions = store.sessions(Some("dr")).await.unwrap();
    let mut seconds: Vec<&str> = sessions.iter().map(|s| &s.started_at[..19]).collect();
    seconds.sort_unstable();
    let ticks = seconds.len();
    seconds.dedup();
    assert_eq!(
        seconds.len(),
        ticks,
        "two sessions for one tick: {sessions:#?}"
    );
    let most = watched.as_secs_f64().ceil() as usize + 1;
    println!(
        "{count} workers for {:.1} s: {ticks} ticks started a session, none started two; \
         {} skipped or missed (a session still running, or the first second)",
        watched.as_secs_f64(),
        most.saturating_sub(ticks + 1)
    );
    assert!(
        (most * 3 / 5..=most).contains(&ticks),
        "{ticks} sessions for about {most} ticks: {sessions:#?}"
    );
    let ended: Vec<_> = sessions.iter().filter(|s| s.ended_at.is_some()).collect();
    assert!(ended.len() + 1 >= ticks, "{sessions:#?}");
    assert!(ended.iter().all(|s| s.status == "Success"), "{sessions:#?}");
}
