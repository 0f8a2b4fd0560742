//! `snaprelay run`: one session of the policy now.

use snaprelay_core::engine::{EngineConfig, run_session};

use crate::Outcome;
use crate::output;

use super::{Settings, Terminal, load_policy, open_store, plan_policy, print_json};

pub async fn run(settings: &Settings, concurrency: usize) -> Outcome {
    let result = async {
        let policy = load_policy(settings)?;
        if policy.retention != Default::default() {
            eprintln!(
                "note: [retention] is checked but not applied by this version of snaprelay yet: \
                 snapshots are kept until deleted by hand"
            );
        }
        let mut store = open_store(settings)?;
        let (cloud, prepared) = plan_policy(&policy).await?;
        let config = EngineConfig {
            concurrency,
            poll_initial: settings.poll_interval,
            ..EngineConfig::default()
        };
        let interrupt = super::interrupt_on_signals();
        let report = run_session(
            &cloud,
            &mut store,
            &Terminal::detect(),
            &config,
            &interrupt,
            &prepared,
        )
        .await
        .map_err(|e| Outcome::Failed(e.to_string()))?;
        if settings.json {
            print_json(&report)?;
        } else {
            print!("{}", output::report_text(&report));
        }
        Ok::<_, Outcome>(Outcome::Code(report.status.exit_code() as u8))
    };
    result.await.unwrap_or_else(|o| o)
}
