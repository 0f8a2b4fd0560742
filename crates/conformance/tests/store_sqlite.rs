//! The state store suite on SQLite: a file in a fresh directory, each `open` a new connection
//! to it as another process would make (the file lock of a lease is per open file).

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use snaprelay_conformance::store::{StoreFixture, run_all};
use snaprelay_core::ports::StateStore;
use snaprelay_state::SqliteStore;

struct SqliteFile {
    path: PathBuf,
}

#[async_trait]
impl StoreFixture for SqliteFile {
    async fn open(&self) -> Arc<dyn StateStore> {
        Arc::new(SqliteStore::open(&self.path).expect("the state file opens"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_passes_the_state_store_suite() {
    let dir = std::env::temp_dir().join(format!("snaprelay-store-suite-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let fixture = SqliteFile {
        path: dir.join("state.sqlite"),
    };
    run_all(&fixture).await;
    std::fs::remove_dir_all(&dir).expect("cleaned up");
}
