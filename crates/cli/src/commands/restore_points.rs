//! `snaprelay restore-points [--policy FILE] [--resource ID]`: the restore points the state
//! store knows, per resource and place (the source, or a target's account and Region).

use snaprelay_core::ports::PointFilter;

use crate::Outcome;
use crate::output;

use super::{Settings, emit, load_policy, open_existing_store, print_json};

pub async fn run(settings: &Settings, resource: Option<&str>) -> Outcome {
    let result = async {
        let policy = match settings.policy {
            Some(_) => Some(load_policy(settings)?.name),
            None => None,
        };
        let store = open_existing_store(settings).await?;
        let points = store
            .find_restore_points(&PointFilter {
                policy: policy.as_deref(),
                resource,
                ..PointFilter::default()
            })
            .await?;
        if settings.json {
            print_json(&points)?;
        } else {
            emit(&output::restore_points_text(&points, resource));
        }
        Ok::<_, Outcome>(Outcome::Code(0))
    };
    result.await.unwrap_or_else(|o| o)
}
