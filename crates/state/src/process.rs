//! Whether the process that ran a session still runs. A pid alone cannot tell: pids are reused
//! after a reboot, and in a container every process tree starts again at 1. A process is told
//! apart by the boot it runs in and the time it started (Linux `/proc`); elsewhere it cannot
//! be, and an unfinished session counts as running.

use std::path::Path;

/// `BOOT_ID:START_TICKS` of a running process, or `None` if it is not running (or `/proc`
/// cannot tell).
pub fn identity(pid: u32) -> Option<String> {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid ...`: comm may hold spaces and parentheses; field 22,
    // `starttime`, is the 20th after the last `)`.
    let (_, fields) = stat.rsplit_once(')')?;
    let start = fields.split_whitespace().nth(19)?;
    Some(format!("{}:{start}", boot.trim()))
}

/// Whether the process recorded for a session is still the one running.
pub fn still_running(pid: Option<u32>, recorded: Option<&str>) -> bool {
    let Some(pid) = pid else {
        // Recorded before sessions recorded their process: cannot tell.
        return true;
    };
    if !cfg!(target_os = "linux") {
        return true;
    }
    match recorded {
        Some(recorded) => identity(pid).as_deref() == Some(recorded),
        // Recorded with its pid only (schema 2).
        None => pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_runs_and_a_reused_pid_does_not_pass_for_it() {
        let me = std::process::id();
        let mine = identity(me);
        if cfg!(target_os = "linux") {
            let mine = mine.expect("/proc tells");
            assert!(still_running(Some(me), Some(&mine)));
            // The same pid, another start: a process that is gone.
            assert!(!still_running(Some(me), Some("another-boot:1")));
            assert!(!still_running(Some(u32::MAX - 1), Some(&mine)));
        }
        assert!(still_running(None, None), "unknown: counted as running");
    }
}
