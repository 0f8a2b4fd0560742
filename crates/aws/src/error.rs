//! SDK errors as the core's [`CloudError`]: the call, the Region, AWS's error code and message.

use std::error::Error;

use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};
use snaprelay_core::ports::CloudError;

pub fn cloud_error<E, R>(
    service: &'static str,
    operation: &'static str,
    region: &str,
    err: SdkError<E, R>,
) -> CloudError
where
    E: ProvideErrorMetadata + Error + 'static,
    R: std::fmt::Debug + 'static,
{
    let code = err.code().map(str::to_owned);
    // A service error has a code and usually a message; anything else (no credentials, the
    // endpoint unreachable, a timeout) is best described by the whole error chain.
    let message = match (err.message(), &code) {
        (Some(m), _) if !m.is_empty() => m.to_owned(),
        (_, Some(_)) => "AWS gave no message".to_owned(),
        _ => chain(&err),
    };
    CloudError {
        service,
        operation,
        region: region.to_owned(),
        code,
        message,
    }
}

/// An answer from AWS that lacks what the call promises (an id, a field).
pub fn malformed(
    service: &'static str,
    operation: &'static str,
    region: &str,
    message: String,
) -> CloudError {
    CloudError {
        service,
        operation,
        region: region.to_owned(),
        code: None,
        message,
    }
}

/// The error and its causes, each once, as one line: "dispatch failure: ... : no credentials".
fn chain(err: &(dyn Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(err);
    while let Some(e) = next {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    parts.join(": ")
}
