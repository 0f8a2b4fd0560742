//! SDK errors as the core's [`CloudError`]: the call, the Region, AWS's error code and message.

use aws_sdk_ec2::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use snaprelay_core::ports::CloudError;

pub fn cloud_error<E, R>(
    service: &'static str,
    operation: &'static str,
    region: &str,
    err: SdkError<E, R>,
) -> CloudError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let code = err.code().map(str::to_owned);
    // A service error has a code and usually a message; anything else (no credentials, the
    // endpoint unreachable, a timeout) is best described by the whole error chain.
    let message = match (err.message(), &code) {
        (Some(m), _) if !m.is_empty() => m.to_owned(),
        (_, Some(_)) => "AWS gave no message".to_owned(),
        _ => DisplayErrorContext(&err).to_string(),
    };
    CloudError {
        service,
        operation,
        region: region.to_owned(),
        code,
        message,
    }
}
