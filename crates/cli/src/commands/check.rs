//! `snaprelay check`: whether the roles and keys the policy uses allow what the workflows do,
//! with the statement that fixes each problem. Only read calls are made. Exit code 0 when
//! everything holds, 1 when something is missing, 2 on bad input.

use snaprelay_core::app;

use crate::Outcome;
use crate::output;

use super::{Settings, aws_app_stateless, emit, load_policy, print_json};

pub async fn run(settings: &Settings) -> Outcome {
    let result = async {
        let policy = load_policy(settings)?;
        let report = app::check(&aws_app_stateless(&policy).await?, &policy).await?;
        if settings.json {
            #[derive(serde::Serialize)]
            struct CheckDocument<'a> {
                #[serde(flatten)]
                report: &'a snaprelay_core::check::CheckReport,
                ok: bool,
            }
            print_json(&CheckDocument {
                report: &report,
                ok: report.holds(),
            })?;
        } else {
            emit(&output::check_text(&report));
        }
        Ok::<_, Outcome>(Outcome::Code(if report.holds() { 0 } else { 1 }))
    };
    result.await.unwrap_or_else(|o| o)
}
