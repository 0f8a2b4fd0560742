//! `check` and `run`'s preflight on the simulator, whose key policies are AWS's documented
//! statements for the accounts a key admits (and whose IAM allows everything).

use snaprelay_core::check::{Holds, check, preflight};
use snaprelay_core::engine::prepare;
use snaprelay_core::ids::AccountId;
use snaprelay_core::plan::Decision;
use snaprelay_core::policy::Policy;
use snaprelay_sim::{Encryption, InstanceSpec, SimCloud, VolumeSpec};

const SOURCE: &str = "111111111111";
const TARGET: &str = "222222222222";

fn account(s: &str) -> AccountId {
    AccountId::parse(s).unwrap()
}

/// An instance under a source key that admits the target account or not, and its policy.
fn setup(admitted: bool) -> (SimCloud, Policy, String) {
    let (src, tgt) = (account(SOURCE), account(TARGET));
    let cloud = SimCloud::new(&src);
    cloud.add_account(&tgt);
    let admits = if admitted { vec![tgt.clone()] } else { vec![] };
    let source_key = cloud.create_key(&src, "us-east-1", Some("app"), &admits);
    let vault = cloud.create_key(&tgt, "eu-west-1", Some("vault"), &[]);
    let web = cloud.add_instance(
        &src,
        "us-east-1",
        InstanceSpec {
            volumes: vec![VolumeSpec {
                size_gib: 10,
                encryption: Encryption::Key(source_key.clone()),
            }],
            ..Default::default()
        },
    );
    let policy = Policy::from_toml(&format!(
        "name = \"dr\"\n[source]\nregions = [\"us-east-1\"]\n[[source.resources]]\ntype = \"ec2\"\n\
         ids = [\"{web}\"]\n[[targets]]\naccount = \"{TARGET}\"\nregion = \"eu-west-1\"\n\
         role_arn = \"arn:aws:iam::{TARGET}:role/snaprelay-target\"\nkms_key = \"{vault}\"\n"
    ))
    .unwrap();
    (cloud, policy, source_key)
}

#[tokio::test(start_paused = true)]
async fn a_key_that_admits_the_target_account_passes() {
    let (cloud, policy, source_key) = setup(true);
    let report = check(&cloud, &policy).await.unwrap();
    assert!(report.holds(), "{:#?}", report.findings);
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.check == "key policy" && f.resource == source_key && f.status == Holds::Ok)
    );
}

#[tokio::test(start_paused = true)]
async fn a_key_that_does_not_admit_it_is_missing_and_run_refuses_that_replica_up_front() {
    let (cloud, policy, source_key) = setup(false);
    let report = check(&cloud, &policy).await.unwrap();
    assert!(!report.holds());
    let missing: Vec<_> = report
        .findings
        .iter()
        .filter(|f| f.status == Holds::Missing)
        .collect();
    assert_eq!(missing.len(), 1, "{missing:#?}");
    assert_eq!(missing[0].resource, source_key);
    assert_eq!(missing[0].principal, format!("arn:aws:iam::{TARGET}:root"));
    assert!(
        missing[0]
            .fix
            .as_deref()
            .unwrap()
            .contains("kms:GrantIsForAWSResource")
    );

    let mut prepared = prepare(&cloud, &policy).await.unwrap();
    assert_eq!(preflight(&cloud, &mut prepared).await, 1);
    match &prepared.plan.tasks[0].targets[0].decision {
        Decision::Refuse { reason } => {
            assert!(
                reason.contains(&source_key) && reason.contains("kms:CreateGrant"),
                "{reason}"
            )
        }
        other => panic!("{other:?}"),
    }
    // Nothing was changed to find it out.
    assert!(cloud.snapshots(&account(SOURCE), "us-east-1").is_empty());
}
