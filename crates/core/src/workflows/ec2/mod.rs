//! EC2 instances (their EBS volumes): the source snapshots, workflow A and workflow B.
//!
//! - [`source`]: step 1 of both workflows, crash-consistent snapshots of every volume.
//! - [`same_account`]: workflow A, a copy to the target Region in the source account.
//! - [`cross_account`]: workflow B, share, copy in the target account, unshare.
//! - `copy`: the copy of a restore point both workflows end with.
//! - [`reencrypt`]: the default-key workaround, snapshots under `aws/ebs` copied under a
//!   customer managed key before workflow B shares them.

mod copy;
pub mod cross_account;
pub mod reencrypt;
pub mod same_account;
pub mod source;
