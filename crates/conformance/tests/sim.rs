//! The conformance suite on the simulator, on virtual time.

use std::time::Duration;

use async_trait::async_trait;
use snaprelay_conformance::{Encryption, Fixture, run_all};
use snaprelay_core::ids::{AccountId, RoleArn};
use snaprelay_core::ports::{Access, Cloud};
use snaprelay_sim::{DbSpec, InstanceSpec, SimCloud, VolumeSpec};

struct SimFixture {
    cloud: SimCloud,
    source: AccountId,
    other: AccountId,
}

#[async_trait]
impl Fixture for SimFixture {
    fn cloud(&self) -> &dyn Cloud {
        &self.cloud
    }
    fn source(&self) -> AccountId {
        self.source.clone()
    }
    fn other(&self) -> AccountId {
        self.other.clone()
    }
    fn access(&self, account: &AccountId) -> Access {
        if account == &self.source {
            return Access::ambient();
        }
        Access::role(RoleArn::parse(&format!(
            "arn:aws:iam::{account}:role/conformance"
        )))
    }
    async fn create_key(
        &self,
        account: &AccountId,
        region: &str,
        alias: Option<&str>,
        admits: &[AccountId],
    ) -> String {
        self.cloud.create_key(account, region, alias, admits)
    }
    async fn create_instance(
        &self,
        account: &AccountId,
        region: &str,
        volumes: &[(u32, Encryption)],
    ) -> String {
        let spec = InstanceSpec {
            volumes: volumes
                .iter()
                .map(|(size_gib, encryption)| VolumeSpec {
                    size_gib: *size_gib,
                    encryption: encryption.clone(),
                })
                .collect(),
            ..Default::default()
        };
        self.cloud.add_instance(account, region, spec)
    }
    async fn create_db_instance(
        &self,
        account: &AccountId,
        region: &str,
        id: &str,
        encryption: Encryption,
    ) {
        let spec = DbSpec {
            id: id.to_owned(),
            engine: "postgres".into(),
            size_gib: 20,
            encryption,
            tags: vec![],
            cluster: None,
        };
        self.cloud.add_db_instance(account, region, spec);
    }
    async fn create_db_cluster(
        &self,
        account: &AccountId,
        region: &str,
        id: &str,
        encryption: Encryption,
    ) {
        let spec = DbSpec {
            id: id.to_owned(),
            engine: "aurora-postgresql".into(),
            size_gib: 20,
            encryption,
            tags: vec![],
            cluster: None,
        };
        self.cloud.add_db_cluster(account, region, spec);
    }
    async fn pause(&self, d: Duration) {
        tokio::time::sleep(d).await;
    }
}

#[tokio::test(start_paused = true)]
async fn the_simulator_conforms() {
    // moto's ambient account, so that both backends see the same ids.
    let source = AccountId::parse("123456789012").unwrap();
    let other = AccountId::parse("222222222222").unwrap();
    let cloud = SimCloud::new(&source);
    cloud.add_account(&other);
    let fixture = SimFixture {
        cloud,
        source,
        other,
    };
    let failures = run_all(&fixture).await;
    assert!(failures.is_empty(), "{failures:#?}");
}
