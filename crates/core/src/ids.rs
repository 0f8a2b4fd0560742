//! Syntax of the AWS identifiers a policy names: account ids, Regions, IAM role ARNs, KMS key
//! references, EC2 instance ids, DB instance identifiers and tags, with AWS's length limits.
//! Only syntax is checked here; whether the thing exists is asked of AWS later.
//! And the ids of snaprelay's own records: sessions, steps, restore points.

use std::fmt;

/// A 12-digit AWS account id.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct AccountId(String);

impl AccountId {
    pub fn parse(s: &str) -> Option<Self> {
        (s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())).then(|| Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether `s` has the shape of an AWS Region name (`us-east-1`, `eu-central-2`,
/// `us-gov-west-1`, `cn-north-1`, `us-isob-east-1`).
pub fn is_region(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    if parts.len() < 3 || parts.len() > 4 {
        return false;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    first.len() == 2
        && first.bytes().all(|b| b.is_ascii_lowercase())
        && !last.is_empty()
        && last.bytes().all(|b| b.is_ascii_digit())
        && parts[1..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
}

/// Whether `s` has the shape of an Availability Zone name: a Region name and a letter
/// (`us-east-1a`), or a Local or Wavelength Zone (`us-east-1-bos-1a`).
pub fn is_availability_zone(s: &str) -> bool {
    let Some(body) = s.strip_suffix(|c: char| c.is_ascii_lowercase()) else {
        return false;
    };
    s.len() <= 64
        && (is_region(body)
            || body.match_indices('-').any(|(i, _)| {
                is_region(&body[..i])
                    && body[i + 1..]
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            }))
}

fn is_partition(s: &str) -> bool {
    matches!(
        s,
        "aws" | "aws-cn" | "aws-us-gov" | "aws-iso" | "aws-iso-b" | "aws-iso-e" | "aws-iso-f"
    )
}

/// The longest IAM role name and role path (`/` included) IAM accepts.
/// https://docs.aws.amazon.com/IAM/latest/APIReference/API_CreateRole.html
pub const ROLE_NAME_MAX: usize = 64;
pub const ROLE_PATH_MAX: usize = 512;

/// An IAM role ARN: `arn:PARTITION:iam::ACCOUNT:role/[PATH/]NAME`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoleArn {
    arn: String,
    account: AccountId,
}

impl RoleArn {
    pub fn parse(s: &str) -> Option<Self> {
        let mut it = s.splitn(6, ':');
        let (arn, partition, service, region, account, resource) = (
            it.next()?,
            it.next()?,
            it.next()?,
            it.next()?,
            it.next()?,
            it.next()?,
        );
        let path_and_name = resource.strip_prefix("role/")?;
        let (path, name) = path_and_name
            .rsplit_once('/')
            .unwrap_or(("", path_and_name));
        // The path as IAM counts it includes its leading and trailing `/`.
        let name_ok = !name.is_empty()
            && name.len() <= ROLE_NAME_MAX
            && (path.is_empty() || path.len() + 2 <= ROLE_PATH_MAX)
            && path_and_name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-/".contains(&b));
        (arn == "arn"
            && is_partition(partition)
            && service == "iam"
            && region.is_empty()
            && name_ok)
            .then_some(())?;
        Some(Self {
            arn: s.to_owned(),
            account: AccountId::parse(account)?,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.arn
    }

    pub fn account(&self) -> &AccountId {
        &self.account
    }

    /// The role's name, without its path (what IAM's `RoleName` parameters take).
    pub fn name(&self) -> &str {
        self.arn.rsplit('/').next().unwrap_or_default()
    }
}

impl fmt::Display for RoleArn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.arn)
    }
}

/// How a policy names a KMS key. AWS accepts all four forms in `KmsKeyId`, but only the ARN
/// forms work for a key in another account, and only ARNs say which Region the key lives in.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum KeyRef {
    /// `arn:aws:kms:REGION:ACCOUNT:key/ID`
    KeyArn {
        arn: String,
        region: String,
        account: AccountId,
    },
    /// `arn:aws:kms:REGION:ACCOUNT:alias/NAME`
    AliasArn {
        arn: String,
        region: String,
        account: AccountId,
    },
    /// A bare key id (`1234abcd-...` or a multi-Region `mrk-...` id).
    KeyId(String),
    /// `alias/NAME`
    AliasName(String),
}

fn is_key_id(s: &str) -> bool {
    let hex = |p: &str, n: usize| p.len() == n && p.bytes().all(|b| b.is_ascii_hexdigit());
    if let Some(mrk) = s.strip_prefix("mrk-") {
        return hex(mrk, 32);
    }
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5 && groups.iter().zip([8, 4, 4, 4, 12]).all(|(g, n)| hex(g, n))
}

fn is_alias_name(name: &str) -> bool {
    // https://docs.aws.amazon.com/kms/latest/APIReference/API_CreateAlias.html: 1-256
    // characters of alphanumerics, '/', '_' and '-' after the `alias/` prefix.
    !name.is_empty()
        && name.len() <= 250
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/_-".contains(&b))
}

impl KeyRef {
    pub fn parse(s: &str) -> Option<Self> {
        if let Some(rest) = s.strip_prefix("arn:") {
            let mut it = rest.splitn(5, ':');
            let (partition, service, region, account, resource) =
                (it.next()?, it.next()?, it.next()?, it.next()?, it.next()?);
            if !is_partition(partition) || service != "kms" || !is_region(region) {
                return None;
            }
            let account = AccountId::parse(account)?;
            let region = region.to_owned();
            let arn = s.to_owned();
            if let Some(id) = resource.strip_prefix("key/") {
                return is_key_id(id).then_some(KeyRef::KeyArn {
                    arn,
                    region,
                    account,
                });
            }
            if let Some(name) = resource.strip_prefix("alias/") {
                return is_alias_name(name).then_some(KeyRef::AliasArn {
                    arn,
                    region,
                    account,
                });
            }
            return None;
        }
        if let Some(name) = s.strip_prefix("alias/") {
            return is_alias_name(name).then(|| KeyRef::AliasName(s.to_owned()));
        }
        is_key_id(s).then(|| KeyRef::KeyId(s.to_owned()))
    }

    /// The text AWS accepts as `KeyId` / `KmsKeyId`.
    pub fn as_str(&self) -> &str {
        match self {
            KeyRef::KeyArn { arn, .. } | KeyRef::AliasArn { arn, .. } => arn,
            KeyRef::KeyId(s) | KeyRef::AliasName(s) => s,
        }
    }

    /// The Region the reference pins the key to, for the ARN forms.
    pub fn region(&self) -> Option<&str> {
        match self {
            KeyRef::KeyArn { region, .. } | KeyRef::AliasArn { region, .. } => Some(region),
            _ => None,
        }
    }

    /// The account the reference pins the key to, for the ARN forms.
    pub fn account(&self) -> Option<&AccountId> {
        match self {
            KeyRef::KeyArn { account, .. } | KeyRef::AliasArn { account, .. } => Some(account),
            _ => None,
        }
    }
}

impl fmt::Display for KeyRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The Region and account of a KMS key ARN as AWS returns it (`KeyMetadata.Arn`,
/// `Volume.KmsKeyId`).
pub fn key_arn_parts(arn: &str) -> Option<(String, AccountId)> {
    match KeyRef::parse(arn)? {
        KeyRef::KeyArn {
            region, account, ..
        }
        | KeyRef::AliasArn {
            region, account, ..
        } => Some((region, account)),
        _ => None,
    }
}

/// `i-` followed by 8 or 17 lowercase hex digits (the short ids of before 2016, the long ones
/// since).
pub fn is_instance_id(s: &str) -> bool {
    s.strip_prefix("i-").is_some_and(|h| {
        (h.len() == 8 || h.len() == 17)
            && h.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    })
}

/// An EC2 id of the form `PREFIX-` and 8 or 17 lowercase hex digits (`subnet-…`, `sg-…`,
/// `vol-…`, `snap-…`, `ami-…`).
pub fn is_ec2_id(s: &str, prefix: &str) -> bool {
    s.strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('-'))
        .is_some_and(|h| {
            (h.len() == 8 || h.len() == 17)
                && h.bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        })
}

/// An RDS DB subnet group name: at most 255 letters, digits, periods, underscores, spaces or
/// hyphens, not `default` (which names the default VPC's group and cannot be made).
/// https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CreateDBSubnetGroup.html
pub fn is_db_subnet_group(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 255
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._ -".contains(&b))
}

/// The longest DB instance identifier RDS accepts.
pub const DB_INSTANCE_ID_MAX: usize = 63;

/// RDS identifier rules (DB instances: 63 characters, DB snapshots: 255): letters, digits and
/// hyphens, starting with a letter, with no two hyphens in a row and no hyphen at the end.
/// https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/CHAP_Limits.html#RDS_Limits.Constraints
pub fn is_db_identifier(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.starts_with(|c: char| c.is_ascii_alphabetic())
        && !s.ends_with('-')
        && !s.contains("--")
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// Tag limits common to EC2 and RDS, in Unicode characters: keys 1-128, values 0-256.
/// https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/Using_Tags.html#tag-restrictions
pub const TAG_KEY_MAX: usize = 128;
pub const TAG_VALUE_MAX: usize = 256;

/// Whether `key` has the length of a tag key. The `aws:` keys AWS writes itself are tag keys
/// too: nobody else may write them, but anyone may select by them.
pub fn is_tag_key(key: &str) -> bool {
    (1..=TAG_KEY_MAX).contains(&key.chars().count())
}

/// Whether `value` fits in a tag value.
pub fn is_tag_value(value: &str) -> bool {
    value.chars().count() <= TAG_VALUE_MAX
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_ids_are_exactly_twelve_digits() {
        assert!(AccountId::parse("111111111111").is_some());
        for bad in ["12345", "1111111111111", "11111111111a", ""] {
            assert!(AccountId::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn region_names_have_the_aws_shape() {
        for ok in [
            "us-east-1",
            "eu-central-2",
            "us-gov-west-1",
            "cn-north-1",
            "ap-southeast-4",
        ] {
            assert!(is_region(ok), "{ok}");
        }
        for bad in ["us-east", "useast1", "US-EAST-1", "us-east-1a", "", "eu--1"] {
            assert!(!is_region(bad), "{bad}");
        }
    }

    #[test]
    fn role_arns_name_an_account_and_a_role() {
        let r = RoleArn::parse("arn:aws:iam::222222222222:role/ops/snaprelay-target").unwrap();
        assert_eq!(r.account().as_str(), "222222222222");
        for bad in [
            "arn:aws:iam::22222222222:role/x",
            "arn:aws:iam::222222222222:user/x",
            "arn:aws:iam:us-east-1:222222222222:role/x",
            "arn:aws:sts::222222222222:role/x",
            "role/x",
            "arn:aws:iam::222222222222:role/",
            "arn:aws:iam::222222222222:role/ops/",
        ] {
            assert!(RoleArn::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn role_names_are_at_most_64_characters_and_paths_512() {
        let arn = |resource: String| format!("arn:aws:iam::222222222222:role/{resource}");
        assert!(RoleArn::parse(&arn("r".repeat(64))).is_some());
        assert!(RoleArn::parse(&arn("r".repeat(65))).is_none());
        // `/` + 510 characters + `/` is the longest path.
        assert!(RoleArn::parse(&arn(format!("{}/r", "p".repeat(510)))).is_some());
        assert!(RoleArn::parse(&arn(format!("{}/r", "p".repeat(511)))).is_none());
        let r = RoleArn::parse(&arn("a/b/target".into())).unwrap();
        assert_eq!(r.name(), "target");
    }

    #[test]
    fn instance_ids_are_i_and_8_or_17_lowercase_hex_digits() {
        for ok in ["i-0123456789abcdef0", "i-1234abcd"] {
            assert!(is_instance_id(ok), "{ok}");
        }
        for bad in [
            "i-0123456789ABCDEF0",
            "i-123456789",
            "i-0123456789abcdef",
            "i-0123456789abcdef01",
            "i-1234abcg",
            "vol-1234abcd",
            "i-",
            "",
        ] {
            assert!(!is_instance_id(bad), "{bad}");
        }
    }

    #[test]
    fn db_instance_identifiers_follow_the_rds_rules() {
        let longest = format!("d{}", "b".repeat(62));
        for ok in ["orders-db", "a", "db1-x", longest.as_str()] {
            assert!(is_db_identifier(ok, DB_INSTANCE_ID_MAX), "{ok}");
        }
        let too_long = format!("d{}", "b".repeat(63));
        for bad in [
            "",
            "1db",
            "-db",
            "db-",
            "db--x",
            "db_x",
            "db.x",
            too_long.as_str(),
        ] {
            assert!(!is_db_identifier(bad, DB_INSTANCE_ID_MAX), "{bad}");
        }
    }

    #[test]
    fn tag_keys_are_1_to_128_characters_and_values_up_to_256() {
        assert!(is_tag_key("backup"));
        assert!(is_tag_key(&"é".repeat(128)), "characters, not bytes");
        assert!(!is_tag_key(""));
        assert!(!is_tag_key(&"k".repeat(129)));
        assert!(is_tag_key("aws:cloudformation:stack-name"), "selectable");
        assert!(is_tag_value("") && is_tag_value(&"é".repeat(256)));
        assert!(!is_tag_value(&"v".repeat(257)));
    }

    #[test]
    fn key_references_take_the_four_forms_aws_accepts() {
        let arn = "arn:aws:kms:eu-west-1:222222222222:key/1234abcd-12ab-34cd-56ef-1234567890ab";
        assert_eq!(KeyRef::parse(arn).unwrap().region(), Some("eu-west-1"));
        let alias = "arn:aws:kms:eu-west-1:222222222222:alias/dr";
        assert!(matches!(
            KeyRef::parse(alias),
            Some(KeyRef::AliasArn { .. })
        ));
        assert!(matches!(
            KeyRef::parse("mrk-1234abcd12ab34cd56ef1234567890ab"),
            Some(KeyRef::KeyId(_))
        ));
        assert!(matches!(
            KeyRef::parse("alias/dr-key"),
            Some(KeyRef::AliasName(_))
        ));
        for bad in [
            "arn:aws:kms:eu-west-1:222222222222:key/not-a-key",
            "arn:aws:kms:eu-west-1:2222:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            "arn:aws:s3:eu-west-1:222222222222:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            "dr-key",
            "alias/",
        ] {
            assert!(KeyRef::parse(bad).is_none(), "{bad}");
        }
    }
}

/// A session's id (`20261127T101500Z-1a2b`: its start time and a salt, so ids sort by time).
#[derive(
    Clone,
    Debug,
    Default,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(transparent)]
pub struct SessionId(String);

impl SessionId {
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for SessionId {
    fn from(id: &str) -> Self {
        Self(id.to_owned())
    }
}

impl From<String> for SessionId {
    fn from(id: String) -> Self {
        Self(id)
    }
}

impl PartialEq<str> for SessionId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for SessionId {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

/// A step begun with [`StateStore::begin_step`], for [`StateStore::end_step`] to complete.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StepId(pub i64);

/// A recorded restore point, as the store numbers it.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct RestorePointId(pub i64);

impl fmt::Display for RestorePointId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}
