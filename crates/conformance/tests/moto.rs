//! The conformance suite on the SDK adapter, over HTTP against moto with `tests/e2e/moto_ext`'s
//! corrections, started here on 127.0.0.1 (`scripts/install-test-deps` installs moto).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use async_trait::async_trait;
use aws_config::sts::AssumeRoleProvider;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use snaprelay_aws::AwsCloud;
use snaprelay_conformance::{Encryption, Fixture, run_all};
use snaprelay_core::ids::{AccountId, RoleArn};
use snaprelay_core::ports::{Access, Cloud};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// moto's account for the credentials `testing`.
const AMBIENT: &str = "123456789012";
const OTHER: &str = "222222222222";

struct Moto {
    _server: Child,
    endpoint: String,
}

/// Starts `python3 tests/e2e/moto_ext --port 0` and reads the endpoint it prints first.
async fn start_moto() -> Moto {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/e2e/moto_ext");
    let mut server = Command::new("python3")
        .arg(&script)
        .args(["--port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("python3 must be installed to run the conformance suite against moto");
    let stdout = server.stdout.take().expect("piped stdout");
    let mut first = String::new();
    BufReader::new(stdout)
        .read_line(&mut first)
        .await
        .expect("reading moto's endpoint");
    let endpoint = first.trim().to_owned();
    assert!(
        endpoint.starts_with("http://127.0.0.1:"),
        "moto_ext did not start (got {endpoint:?}); install the test dependencies with \
         scripts/install-test-deps"
    );
    Moto {
        _server: server,
        endpoint,
    }
}

struct MotoFixture {
    cloud: AwsCloud,
    ambient: SdkConfig,
    other: SdkConfig,
}

fn role(account: &AccountId) -> RoleArn {
    // moto switches accounts on AssumeRole into any role ARN of the account.
    RoleArn::parse(&format!("arn:aws:iam::{account}:role/snaprelay-test")).expect("role ARN")
}

impl MotoFixture {
    async fn new(endpoint: &str) -> Self {
        let ambient = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(endpoint)
            .credentials_provider(Credentials::new("testing", "testing", None, None, "tests"))
            .load()
            .await;
        let other_account = AccountId::parse(OTHER).expect("account");
        let provider = AssumeRoleProvider::builder(role(&other_account).as_str())
            .session_name("conformance")
            .configure(&ambient)
            .build()
            .await;
        let other = ambient
            .to_builder()
            .credentials_provider(SharedCredentialsProvider::new(provider))
            .build();
        Self {
            cloud: AwsCloud::with_config(ambient.clone()),
            ambient,
            other,
        }
    }

    fn config(&self, account: &AccountId, region: &str) -> SdkConfig {
        let base = if account.as_str() == AMBIENT {
            &self.ambient
        } else {
            &self.other
        };
        base.to_builder()
            .region(Region::new(region.to_owned()))
            .build()
    }
}

#[async_trait]
impl Fixture for MotoFixture {
    fn cloud(&self) -> &dyn Cloud {
        &self.cloud
    }
    fn source(&self) -> AccountId {
        AccountId::parse(AMBIENT).expect("account")
    }
    fn other(&self) -> AccountId {
        AccountId::parse(OTHER).expect("account")
    }
    fn access(&self, account: &AccountId) -> Access {
        if account.as_str() == AMBIENT {
            Access::ambient()
        } else {
            Access::role(Some(role(account)))
        }
    }

    async fn create_key(
        &self,
        account: &AccountId,
        region: &str,
        alias: Option<&str>,
        admits: &[AccountId],
    ) -> String {
        let kms = aws_sdk_kms::Client::new(&self.config(account, region));
        let mut statements = vec![serde_json::json!({
            "Sid": "Enable IAM User Permissions",
            "Effect": "Allow",
            "Principal": {"AWS": format!("arn:aws:iam::{account}:root")},
            "Action": "kms:*",
            "Resource": "*",
        })];
        if !admits.is_empty() {
            let principals: Vec<String> = admits
                .iter()
                .map(|a| format!("arn:aws:iam::{a}:root"))
                .collect();
            statements.push(serde_json::json!({
                "Sid": "Allow use of the key by other accounts",
                "Effect": "Allow",
                "Principal": {"AWS": principals},
                "Action": ["kms:DescribeKey", "kms:CreateGrant", "kms:Decrypt",
                           "kms:ReEncrypt*", "kms:GenerateDataKey*"],
                "Resource": "*",
            }));
        }
        let policy = serde_json::json!({"Version": "2012-10-17", "Statement": statements});
        let key = kms
            .create_key()
            .policy(policy.to_string())
            .send()
            .await
            .expect("CreateKey");
        let meta = key.key_metadata().expect("KeyMetadata");
        if let Some(alias) = alias {
            kms.create_alias()
                .alias_name(format!("alias/{alias}"))
                .target_key_id(meta.key_id())
                .send()
                .await
                .expect("CreateAlias");
        }
        meta.arn().expect("key ARN").to_owned()
    }

    async fn create_instance(
        &self,
        account: &AccountId,
        region: &str,
        volumes: &[(u32, Encryption)],
    ) -> String {
        use aws_sdk_ec2::types::{BlockDeviceMapping, EbsBlockDevice, InstanceType};
        let ec2 = aws_sdk_ec2::Client::new(&self.config(account, region));
        let mappings = volumes.iter().enumerate().map(|(n, (size, encryption))| {
            let ebs = EbsBlockDevice::builder()
                .volume_size(i32::try_from(*size).unwrap_or(8))
                .delete_on_termination(true);
            let ebs = match encryption {
                Encryption::None => ebs,
                Encryption::DefaultKey => ebs.encrypted(true),
                Encryption::Key(arn) => ebs.encrypted(true).kms_key_id(arn),
            };
            let device = if n == 0 {
                "/dev/sda1".to_owned()
            } else {
                format!("/dev/sd{}", char::from(b'e' + n as u8))
            };
            BlockDeviceMapping::builder()
                .device_name(device)
                .ebs(ebs.build())
                .build()
        });
        let out = ec2
            .run_instances()
            .image_id("ami-12c6146b")
            .instance_type(InstanceType::T3Micro)
            .min_count(1)
            .max_count(1)
            .set_block_device_mappings(Some(mappings.collect()))
            .send()
            .await
            .expect("RunInstances");
        out.instances()[0]
            .instance_id()
            .expect("instance id")
            .to_owned()
    }

    async fn create_db_instance(
        &self,
        account: &AccountId,
        region: &str,
        id: &str,
        encryption: Encryption,
    ) {
        let rds = aws_sdk_rds::Client::new(&self.config(account, region));
        let call = rds
            .create_db_instance()
            .db_instance_identifier(id)
            .db_instance_class("db.t3.micro")
            .engine("postgres")
            .master_username("snaprelay")
            .master_user_password("not-a-secret-1")
            .allocated_storage(20);
        let call = match encryption {
            Encryption::None => call,
            Encryption::DefaultKey => call.storage_encrypted(true),
            Encryption::Key(arn) => call.storage_encrypted(true).kms_key_id(arn),
        };
        call.send().await.expect("CreateDBInstance");
    }

    async fn create_db_cluster(
        &self,
        account: &AccountId,
        region: &str,
        id: &str,
        encryption: Encryption,
    ) {
        let rds = aws_sdk_rds::Client::new(&self.config(account, region));
        let call = rds
            .create_db_cluster()
            .db_cluster_identifier(id)
            .engine("aurora-postgresql")
            .master_username("snaprelay")
            .master_user_password("not-a-secret-1");
        let call = match encryption {
            Encryption::None => call,
            Encryption::DefaultKey => call.storage_encrypted(true),
            Encryption::Key(arn) => call.storage_encrypted(true).kms_key_id(arn),
        };
        call.send().await.expect("CreateDBCluster");
    }

    async fn pause(&self, d: Duration) {
        // moto completes snapshots at once; a short real wait is enough if one is pending.
        tokio::time::sleep(d.min(Duration::from_millis(50))).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sdk_adapter_against_moto_conforms() {
    let moto = start_moto().await;
    let fixture = MotoFixture::new(&moto.endpoint).await;
    let failures = run_all(&fixture).await;
    assert!(failures.is_empty(), "{failures:#?}");
}
