//! SDK errors as the core's [`CloudError`]: the call, the Region, AWS's error code and message.

use std::error::Error;

use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};
use snaprelay_core::ports::{CloudError, Reach, redacted_url};

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
    let reach = reach(&err, &message);
    let message = match reach {
        Reach::Answered => message,
        Reach::NoCredentials => format!(
            "{message} (no credentials were found in the SDK's default chain: AWS_PROFILE or \
             the default profile, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, web identity, the \
             container or instance role)"
        ),
        Reach::Unreachable => format!("{message} (endpoint: {})", endpoint(region)),
    };
    CloudError {
        service,
        operation,
        region: region.to_owned(),
        code,
        message,
        reach,
    }
}

/// Whether the call reached AWS. The SDK says so by its error's kind: only a service error is
/// an answer; a request that could not be made for want of credentials names them in its
/// cause (the identity resolver runs before the request is sent).
fn reach<E, R>(err: &SdkError<E, R>, message: &str) -> Reach {
    match err {
        SdkError::ServiceError(_) => Reach::Answered,
        // A token that cannot even be put in a header is a credentials problem too.
        _ if ["credential", "canonical request"]
            .iter()
            .any(|w| message.to_ascii_lowercase().contains(w)) =>
        {
            Reach::NoCredentials
        }
        SdkError::ResponseError(_) => Reach::Unreachable,
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => Reach::Unreachable,
        _ => Reach::Answered,
    }
}

/// Where calls go: `AWS_ENDPOINT_URL` when set (an emulator, a VPC endpoint), else the
/// Region's public endpoint.
fn endpoint(region: &str) -> String {
    match std::env::var("AWS_ENDPOINT_URL") {
        Ok(url) if !url.trim().is_empty() => format!(
            "AWS_ENDPOINT_URL={} (or a service's AWS_ENDPOINT_URL_<SERVICE>)",
            redacted_url(&url)
        ),
        _ => format!("the public AWS endpoint of {region}"),
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
        reach: Reach::Answered,
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
