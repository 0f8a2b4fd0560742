//! The crash hook for tests: with `SNAPRELAY_ABORT_AFTER_SIDE_EFFECT=N`, the process aborts
//! (like `kill -9`: no cleanup, no final record) right after the Nth call of `run` (or
//! `retention apply`) that changes AWS (a snapshot, share, unshare, copy or delete) has
//! returned. Crash tests use it to
//! stop a session at every point in turn. Unset, there is no hook.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use snaprelay_core::engine::ChangeHook;

pub const VARIABLE: &str = "SNAPRELAY_ABORT_AFTER_SIDE_EFFECT";

/// The hook the environment asks for, if any; an error names a bad value.
pub fn abort_hook() -> Result<Option<ChangeHook>, String> {
    let nth = match std::env::var(VARIABLE) {
        // Empty is unset, as for every variable of ours.
        Err(_) => return Ok(None),
        Ok(v) if v.trim().is_empty() => return Ok(None),
        Ok(v) => v
            .parse::<u64>()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| format!("{VARIABLE} = {v:?} is not a whole number of at least 1"))?,
    };
    let done = AtomicU64::new(0);
    Ok(Some(ChangeHook(Arc::new(
        move |operation: &'static str| {
            if done.fetch_add(1, Ordering::SeqCst) + 1 == nth {
                say!("snaprelay: {VARIABLE}={nth}: aborting after {operation}");
                std::process::abort();
            }
        },
    ))))
}
