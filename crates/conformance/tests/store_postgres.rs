//! The state store suite on PostgreSQL: a private server started for this test by
//! `scripts/pg-test-server` (Debian's PostgreSQL, installed by `scripts/install-test-deps`),
//! on 127.0.0.1 and a free port, stopped at the end. Each `open` is a new pool, as another
//! worker would have.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use snaprelay_conformance::store::{StoreFixture, run_all};
use snaprelay_core::ports::StateStore;
use snaprelay_state::PgStore;

/// The server, stopped (and its directory removed) when dropped, a failing test included.
struct Server {
    dir: PathBuf,
    url: String,
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/pg-test-server")
}

impl Server {
    fn start(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("snaprelay-pg-{name}-{}", std::process::id()));
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

struct Postgres {
    url: String,
}

#[async_trait]
impl StoreFixture for Postgres {
    async fn open(&self) -> Arc<dyn StateStore> {
        Arc::new(
            PgStore::connect(&self.url)
                .await
                .expect("the database opens"),
        )
    }

    fn ttl(&self) -> Duration {
        Duration::from_secs(2)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_passes_the_state_store_suite() {
    let server = Server::start("suite");
    run_all(&Postgres {
        url: server.url.clone(),
    })
    .await;
}

/// Two workers starting together migrate once, and a schema newer than the binary is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_run_once_and_a_newer_schema_is_refused() {
    let server = Server::start("migrations");
    let (a, b) = tokio::join!(PgStore::connect(&server.url), PgStore::connect(&server.url));
    a.expect("first worker");
    b.expect("second worker");
    let (client, connection) = tokio_postgres::connect(&server.url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    client
        .execute("UPDATE snaprelay_schema SET version = version + 1", &[])
        .await
        .expect("bump the schema");
    let refused = PgStore::connect(&server.url)
        .await
        .err()
        .expect("a newer schema is refused");
    assert!(refused.0.contains("newer snaprelay"), "{refused}");
    let url_with_password = server.url.replace("snaprelay@", "snaprelay:s3cret@");
    let refused = PgStore::connect(&url_with_password)
        .await
        .err()
        .expect("refused");
    assert!(!refused.0.contains("s3cret"), "{refused}");
}
