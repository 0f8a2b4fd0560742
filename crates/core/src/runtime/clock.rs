//! Wall-clock timestamps (RFC 3339, UTC) and session ids, on `jiff`'s timestamps (the same
//! crate gives `serve`'s schedules their IANA time zones).

use std::time::{SystemTime, UNIX_EPOCH};

use jiff::Timestamp;

/// Now, as `2026-11-26T19:30:56Z`.
pub fn utc_now() -> String {
    rfc3339(now_secs())
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Seconds since the Unix epoch as an RFC 3339 UTC timestamp (whole seconds).
pub fn rfc3339(secs: u64) -> String {
    let t = i64::try_from(secs)
        .ok()
        .and_then(|s| Timestamp::from_second(s).ok())
        .unwrap_or(Timestamp::MAX);
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Seconds since the Unix epoch of an RFC 3339 timestamp (`2026-11-26T19:30:56Z`, or with an
/// offset: `2026-11-26T20:30:56+01:00`); `None` for anything else, a day that does not exist
/// (`2026-02-30`) or a time before 1970.
pub fn parse_rfc3339(s: &str) -> Option<u64> {
    let t: Timestamp = s.parse().ok()?;
    u64::try_from(t.as_second()).ok()
}

/// A new session id: the UTC start time, sortable, and a suffix that keeps two sessions
/// started in the same second apart (`20261126T193056Z-4f1c`).
pub fn new_session_id() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let stamp: String = rfc3339(now.as_secs())
        .chars()
        .filter(|c| *c != '-' && *c != ':')
        .collect();
    let salt = (now.subsec_nanos() ^ std::process::id().rotate_left(16)) & 0xffff;
    format!("{stamp}-{salt:04x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_795_721_456), "2026-11-26T19:30:56Z");
    }

    #[test]
    fn timestamps_parse_back_and_impossible_dates_do_not() {
        for secs in [0, 951_782_400, 1_795_721_456] {
            assert_eq!(parse_rfc3339(&rfc3339(secs)), Some(secs));
        }
        assert_eq!(
            parse_rfc3339("2026-11-26T20:30:56+01:00"),
            Some(1_795_721_456),
            "an offset is taken into account"
        );
        for bad in [
            "2026-02-30T00:00:00Z",
            "2026-11-26T19:30:56",
            "1969-12-31T23:59:59Z",
            "x",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn session_ids_start_with_the_compact_time() {
        let id = new_session_id();
        assert_eq!(id.len(), "20261126T193056Z-4f1c".len(), "{id}");
        assert!(id.as_bytes()[8] == b'T' && id.ends_with(|c: char| c.is_ascii_hexdigit()));
    }
}
