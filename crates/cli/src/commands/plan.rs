//! `snaprelay plan`: what a run would do, per resource and target, and what its copies cost
//! (SPEC 6.5). Only read calls are made, to AWS and to the state.

use snaprelay_core::app;

use crate::Outcome;
use crate::output;

use super::{Settings, aws_app_reading_state, emit, load_policy, print_json};

pub async fn run(settings: &Settings) -> Outcome {
    let result = async {
        let policy = load_policy(settings)?;
        let prepared = app::plan(&aws_app_reading_state(settings, &policy).await?, &policy).await?;
        if settings.json {
            #[derive(serde::Serialize)]
            struct PlanDocument<'a> {
                #[serde(flatten)]
                plan: &'a snaprelay_core::plan::Plan,
                expected_status: snaprelay_core::status::Status,
            }
            print_json(&PlanDocument {
                plan: &prepared.plan,
                expected_status: prepared.plan.expected_status(),
            })?;
        } else {
            emit(&output::plan_text(&prepared.plan));
        }
        Ok::<_, Outcome>(Outcome::Code(0))
    };
    result.await.unwrap_or_else(|o| o)
}
