//! stderr, one writer for every line: text for people, or with `--log-format json` one JSON
//! object a line (events, messages, the final error), so that a machine reading it never meets
//! a line it cannot parse. Writing never panics: a closed stderr drops the line.

use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};

use snaprelay_core::app::AppError;

static JSON: AtomicBool = AtomicBool::new(false);

/// `--log-format json`: every line from now on is a JSON object.
pub fn set_json(json: bool) {
    JSON.store(json, Ordering::Relaxed);
}

fn line(text: &str) {
    let _ = writeln!(std::io::stderr(), "{text}");
}

/// A structured event (progress, a step, a task's end); as JSON in both modes.
pub fn event(event: &serde_json::Value) {
    line(&event.to_string());
}

/// A line for people.
pub fn message(text: &str) {
    if JSON.load(Ordering::Relaxed) {
        event(&serde_json::json!({
            "event": "message",
            "time": snaprelay_core::runtime::clock::utc_now(),
            "text": text,
        }));
    } else {
        line(&crate::output::escape_controls(text));
    }
}

/// The error a command ends with.
pub fn error(error: &AppError) {
    if JSON.load(Ordering::Relaxed) {
        event(&serde_json::json!({
            "event": "error",
            "time": snaprelay_core::runtime::clock::utc_now(),
            "error": error.message,
            "code": error.kind.code(),
        }));
    } else {
        line(&crate::output::escape_controls(&format!(
            "error: {}",
            error.message
        )));
    }
}

/// Where the log goes in JSON mode: each record is collected whole, then written as one line
/// with `"event": "log"` first, so that every stderr line says what it is.
pub struct JsonLog;

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for JsonLog {
    type Writer = LogRecord;

    fn make_writer(&'a self) -> Self::Writer {
        LogRecord(Vec::new())
    }
}

/// One log record being written.
pub struct LogRecord(Vec<u8>);

impl std::io::Write for LogRecord {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LogRecord {
    fn drop(&mut self) {
        let text = String::from_utf8_lossy(&self.0);
        let text = text.trim_end();
        match text.strip_prefix('{') {
            Some(rest) => line(&format!("{{\"event\":\"log\",{rest}")),
            None if !text.is_empty() => message(text),
            None => {}
        }
    }
}
