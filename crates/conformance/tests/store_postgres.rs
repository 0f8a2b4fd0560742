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
        Self::start_as("start", name)
    }

    /// A server that takes TLS connections only (see `scripts/pg-test-server start-tls`).
    fn start_tls(name: &str) -> Self {
        Self::start_as("start-tls", name)
    }

    fn start_as(how: &str, name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("snaprelay-pg-{name}-{}", std::process::id()));
        let out = Command::new(script())
            .arg(how)
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

/// A statement stuck behind another session's lock is ended by the server after the statement
/// timeout (30 s unless the URL's `options` say otherwise), so a worker is never held for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_stuck_behind_a_lock_ends_at_the_statement_timeout() {
    let server = Server::start("timeout");
    let store = PgStore::connect(&server.url).await.expect("connects");
    assert_eq!(store.setting("statement_timeout").await.unwrap(), "30s");
    let short = PgStore::connect(&format!(
        "{}?options=-c%20statement_timeout%3D1s",
        server.url
    ))
    .await
    .expect("connects");
    assert_eq!(short.setting("statement_timeout").await.unwrap(), "1s");
    // Someone holds the sessions table in a transaction that does not end.
    let (mut client, connection) = tokio_postgres::connect(&server.url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    let tx = client.transaction().await.unwrap();
    tx.batch_execute("LOCK TABLE sessions IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let began = std::time::Instant::now();
    let stuck = short
        .begin_session(
            &snaprelay_core::ids::SessionId::new("stuck".to_owned()),
            "p",
            "2026-12-05T00:00:00Z",
        )
        .await;
    let took = began.elapsed();
    assert!(stuck.is_err(), "the statement was ended");
    assert!(
        took < Duration::from_secs(10),
        "ended by the statement timeout, not a client wait: {took:?}"
    );
    eprintln!("a statement stuck behind a lock ended after {took:?} (statement_timeout 1s)");
    tx.rollback().await.unwrap();
}

/// libpq's `sslmode` meanings over TLS (SPEC 6.7): the server takes TLS connections only, with
/// a certificate for `localhost` signed by `ca.pem`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_modes_mean_what_they_mean_in_libpq() {
    let server = Server::start_tls("tls");
    let ca = server.dir.join("ca.pem");
    let other = server.dir.join("other-ca.pem");
    let by_name = server.url.replace("@127.0.0.1:", "@localhost:");
    let open = |url: String| async move { PgStore::connect(&url).await };
    let encrypted = |store: PgStore| async move { store.encryption().await.expect("reads") };

    // Encrypted, the server not authenticated: prefer (the default) and require.
    for mode in ["", "?sslmode=prefer", "?sslmode=require"] {
        let store = open(format!("{}{mode}", server.url)).await.expect(mode);
        assert!(encrypted(store).await.starts_with("TLS"), "{mode}");
    }
    // verify-full: the chain and the name.
    let full = format!("{by_name}?sslmode=verify-full&sslrootcert={}", ca.display());
    assert!(
        encrypted(open(full).await.expect("verify-full by name"))
            .await
            .starts_with("TLS")
    );
    let wrong_name = format!(
        "{}?sslmode=verify-full&sslrootcert={}",
        server.url,
        ca.display()
    );
    let e = open(wrong_name)
        .await
        .err()
        .expect("the certificate does not name 127.0.0.1");
    assert!(e.0.contains("certificate"), "{e}");
    // verify-ca: the chain only; and require with a CA given checks the chain too.
    let ca_only = format!(
        "{}?sslmode=verify-ca&sslrootcert={}",
        server.url,
        ca.display()
    );
    assert!(
        encrypted(open(ca_only).await.expect("verify-ca"))
            .await
            .starts_with("TLS")
    );
    for mode in ["verify-ca", "require"] {
        let untrusted = format!(
            "{}?sslmode={mode}&sslrootcert={}",
            server.url,
            other.display()
        );
        let e = open(untrusted).await.err().expect("signed by another CA");
        assert!(e.0.contains("certificate"), "{mode}: {e}");
    }
    // No TLS: the server refuses; a bad mode or CA file is named.
    let e = open(format!("{}?sslmode=disable", server.url))
        .await
        .err()
        .expect("TLS only");
    assert!(e.0.contains("no encryption"), "{e}");
    let e = open(format!("{}?sslmode=verify-fully", server.url))
        .await
        .err()
        .expect("bad mode");
    assert!(e.0.contains("\"verify-fully\" is not a TLS mode"), "{e}");
    let missing = format!(
        "{}?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem",
        server.url
    );
    let e = open(missing).await.err().expect("no CA file");
    assert!(e.0.contains("/nonexistent/ca.pem"), "{e}");
}
