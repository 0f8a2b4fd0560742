//! The fleet benchmark (issue 4): one session of 10,000 EC2 instances (two volumes on average)
//! and 1,000 RDS DB instances, in two source Regions of one account, replicated to the same
//! account in a third Region and to another account in a fourth, on the simulator and virtual
//! time. Prints the simulated makespan against its lower bound, the API calls by operation and
//! per replica, the process CPU time and the peak memory.
//!
//! Run: `cargo bench -p snaprelay-sim --bench fleet` (add `-- --instances N --dbs N
//! --concurrency N` to vary it). Linux only for CPU and memory (read from /proc/self).
//!
//! The lower bound: for each destination (account, Region, service), the copy time it received
//! divided by its copy quota; or the longest snapshot-then-copies chain of one replica; the
//! larger of them. No schedule can beat it.

use std::time::Duration;

use snaprelay_core::engine::{EngineConfig, Interrupt, Progress, Throttled, prepare, run_session};
use snaprelay_core::ids::AccountId;
use snaprelay_core::policy::Policy;
use snaprelay_sim::{DbSpec, Encryption, InstanceSpec, Quotas, Rng, SimCloud, VolumeSpec};
use snaprelay_state::SqliteStore;

const SOURCE: &str = "111111111111";
const VAULT: &str = "222222222222";
const SOURCE_REGIONS: [&str; 2] = ["us-east-1", "us-west-2"];

struct Quiet;
impl Progress for Quiet {
    fn update(&self, _: &str, _: &str) {}
}

struct Options {
    instances: usize,
    dbs: usize,
    concurrency: usize,
}

fn options() -> Options {
    let mut o = Options {
        instances: 10_000,
        dbs: 1_000,
        concurrency: 1_024,
    };
    let args: Vec<String> = std::env::args().collect();
    for pair in args.windows(2) {
        let value = pair[1].parse::<usize>().ok();
        match (pair[0].as_str(), value) {
            ("--instances", Some(v)) => o.instances = v,
            ("--dbs", Some(v)) => o.dbs = v,
            ("--concurrency", Some(v)) => o.concurrency = v.max(1),
            _ => {}
        }
    }
    o
}

/// Volume sizes of a fleet: many small root volumes, some data volumes, a few large ones.
fn volume_size(rng: &mut Rng) -> u32 {
    match rng.between(0, 9) {
        0..=5 => rng.between(8, 64),
        6..=8 => rng.between(64, 256),
        _ => rng.between(256, 1024),
    }
}

fn build(o: &Options) -> (SimCloud, String) {
    let source = AccountId::parse(SOURCE).expect("account");
    let vault = AccountId::parse(VAULT).expect("account");
    let cloud = SimCloud::with_seed(&source, 42);
    cloud.add_account(&vault);
    // A fleet this size has the manual DB snapshot quota raised from its default of 100 per
    // Region (it is adjustable); the copy quotas stay at AWS's 20.
    cloud.set_quotas(Quotas {
        rds_manual_snapshots: 10_000,
        ..Quotas::default()
    });
    let west_key = cloud.create_key(&source, "eu-west-1", Some("dr"), &[]);
    let vault_key = cloud.create_key(&vault, "eu-central-1", Some("vault"), &[]);
    let mut rng = Rng::new(7);
    for (r, region) in SOURCE_REGIONS.iter().enumerate() {
        let key = cloud.create_key(&source, region, Some("app"), std::slice::from_ref(&vault));
        let share = |n: usize| n / 2 + if r == 0 { n % 2 } else { 0 };
        for _ in 0..share(o.instances) {
            let volumes = (0..rng.between(1, 3))
                .map(|_| VolumeSpec {
                    size_gib: volume_size(&mut rng),
                    encryption: Encryption::Key(key.clone()),
                })
                .collect();
            cloud.add_instance(
                &source,
                region,
                InstanceSpec {
                    name: None,
                    tags: vec![("backup".into(), "gold".into())],
                    volumes,
                },
            );
        }
        for n in 0..share(o.dbs) {
            cloud.add_db_instance(
                &source,
                region,
                DbSpec {
                    id: format!("db-{region}-{n}"),
                    engine: "postgres".into(),
                    size_gib: rng.between(20, 1000),
                    encryption: Encryption::Key(key.clone()),
                    tags: vec![("backup".into(), "gold".into())],
                    cluster: None,
                },
            );
        }
    }
    let policy = format!(
        r#"name = "fleet"
[source]
regions = ["us-east-1", "us-west-2"]
[[source.resources]]
type = "ec2"
tags = {{ backup = "gold" }}
[[source.resources]]
type = "rds"
tags = {{ backup = "gold" }}
[[targets]]
region = "eu-west-1"
kms_key = "{west_key}"
[[targets]]
account = "{VAULT}"
region = "eu-central-1"
role_arn = "arn:aws:iam::{VAULT}:role/snaprelay-target"
kms_key = "{vault_key}"
"#
    );
    (cloud, policy)
}

/// (user + system CPU seconds, peak resident MiB) of this process, from /proc/self.
fn cpu_and_peak_memory() -> (Option<f64>, Option<f64>) {
    let cpu = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            // Fields after the command name (which may hold spaces) end with ')'.
            let rest = s.rsplit_once(')')?.1;
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let ticks =
                fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
            Some(ticks / 100.0) // USER_HZ is 100 in /proc on Linux
        });
    let peak = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
            let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kib / 1024.0)
        });
    (cpu, peak)
}

/// Resident memory now, in MiB.
fn resident_mib() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    Some(line.split_whitespace().nth(1)?.parse::<f64>().ok()? / 1024.0)
}

fn hours(d: Duration) -> String {
    format!("{:.1} h", d.as_secs_f64() / 3600.0)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` asks for the benchmarks' names
    }
    let o = options();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("runtime");
    let dir = std::env::temp_dir().join(format!("snaprelay-fleet-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let state = dir.join("state.sqlite");

    let (cloud, policy) = build(&o);
    let estate_mib = resident_mib();
    let (cpu_before, _) = cpu_and_peak_memory();
    let wall = std::time::Instant::now();
    let (report, makespan) = runtime.block_on(async {
        let policy = Policy::from_toml(&policy).expect("policy");
        let store = SqliteStore::open(&state).expect("state store");
        let cloud = Throttled::new(&cloud);
        let prepared = prepare(&cloud, &policy).await.expect("prepare");
        let config = EngineConfig {
            concurrency: o.concurrency,
            ..EngineConfig::default()
        };
        let start = tokio::time::Instant::now();
        let report = run_session(
            &cloud,
            &store,
            &Quiet,
            &config,
            &Interrupt::never(),
            &prepared,
            None,
        )
        .await
        .expect("session");
        (report, start.elapsed())
    });
    let wall = wall.elapsed();
    let (cpu_after, peak) = cpu_and_peak_memory();
    let _ = std::fs::remove_dir_all(&dir);

    let replicas: usize = report
        .resources
        .iter()
        .flat_map(|r| &r.replicas)
        .map(|p| p.snapshots.len())
        .sum();
    let failed = report
        .resources
        .iter()
        .filter(|r| r.status != snaprelay_core::status::Status::Success)
        .count();
    let places = cloud.place_stats();
    let chain = cloud.longest_chain();
    let bound = places
        .iter()
        .map(|p| p.copies_time / p.quota as u32)
        .chain([chain])
        .max()
        .unwrap_or_default();
    let calls = cloud.calls();
    let total: u64 = calls.values().sum();
    let polls: u64 = calls
        .iter()
        .filter(|(op, _)| op.contains(":Describe") && op.contains("Snapshots"))
        .map(|(_, n)| n)
        .sum();

    println!(
        "fleet: {} EC2 instances, {} RDS DB instances, 2 accounts, 4 Regions, concurrency {}",
        o.instances, o.dbs, o.concurrency
    );
    println!(
        "session {}: {} resources, {} not Success, {} replica snapshots",
        report.status,
        report.resources.len(),
        failed,
        replicas
    );
    println!("\ndestinations (copies received / quota, peak in flight):");
    for p in &places {
        println!(
            "  {:?} {}/{:<13} {:>8} of copy time / {} = {:>8}   peak {}",
            p.service,
            p.account,
            p.region,
            hours(p.copies_time),
            p.quota,
            hours(p.copies_time / p.quota as u32),
            p.peak_in_flight
        );
    }
    let ratio = makespan.as_secs_f64() / bound.as_secs_f64().max(1.0);
    println!("\nsimulated makespan   {}", hours(makespan));
    println!(
        "lower bound          {} (longest chain {})",
        hours(bound),
        hours(chain)
    );
    println!("makespan / bound     {ratio:.3}   (target <= 1.05)");
    println!("\nAWS API calls by operation:");
    for (op, n) in &calls {
        println!("  {op:<32} {n:>8}");
    }
    println!("polls by place:");
    for ((op, account, region), n) in cloud.calls_by_place() {
        if op.contains(":Describe") && op.contains("Snapshots") {
            println!("  {op:<26} {account}/{region:<13} {n:>8}");
        }
    }
    let poll_share = polls as f64 / total.max(1) as f64;
    println!(
        "  {:<32} {total:>8}   ({:.2} per replica)",
        "total",
        total as f64 / replicas.max(1) as f64
    );
    println!(
        "polling (Describe*Snapshots) {polls} = {:.1}% of calls   (target <= 25%)",
        poll_share * 100.0
    );
    match (cpu_before, cpu_after) {
        (Some(a), Some(b)) => println!(
            "CPU {:.2} s for the session = {:.3} s per 1,000 replicas   (target <= 1); wall {:.2} s",
            b - a,
            (b - a) * 1000.0 / replicas.max(1) as f64,
            wall.as_secs_f64()
        ),
        _ => println!(
            "CPU: /proc/self/stat not readable; wall {:.2} s",
            wall.as_secs_f64()
        ),
    }
    match (peak, estate_mib) {
        (Some(mb), Some(estate)) => println!(
            "peak memory {mb:.0} MiB for the process   (target <= 200); the simulated estate \
             alone took {estate:.0} MiB before the session and grows with the snapshots it keeps"
        ),
        _ => println!("peak memory: /proc/self/status not readable"),
    }
}
