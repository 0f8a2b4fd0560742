//! The EBS direct API: what changed between two snapshots, for what an incremental copy moves.

use aws_sdk_ebs::Client;
use snaprelay_core::ports::{ChangedBlocks, CloudError};

use crate::error::{cloud_error, malformed};

/// The block size AWS documents for the EBS direct APIs (512 KiB), used when an answer leaves
/// `BlockSize` out because it listed no block.
const BLOCK_SIZE: u64 = 512 * 1024;

/// `ListChangedBlocks` between two snapshots, every page counted
/// (<https://docs.aws.amazon.com/ebs/latest/APIReference/API_ListChangedBlocks.html>). Both must
/// be snapshots of one volume's lineage, readable by the caller (`ebs:ListChangedBlocks`); the
/// answer is a list of block indexes, `BlockSize` bytes each (512 KiB), over as many pages as
/// `NextToken` says (a page may be empty and still have a next one), so the bytes are
/// blocks × block size. Pages are counted as they come, not kept: a large volume has millions
/// of blocks.
pub async fn changed_blocks(
    client: &Client,
    region: &str,
    first: &str,
    second: &str,
) -> Result<ChangedBlocks, CloudError> {
    let mut pages = client
        .list_changed_blocks()
        .first_snapshot_id(first)
        .second_snapshot_id(second)
        .max_results(10_000)
        .into_paginator()
        .send();
    let mut blocks = 0u64;
    let mut block_size = None;
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| cloud_error("EBS", "ListChangedBlocks", region, e))?;
        blocks = blocks.saturating_add(page.changed_blocks().len() as u64);
        block_size = block_size.or(page.block_size());
    }
    let block_size = match block_size {
        None => BLOCK_SIZE,
        Some(b) => u64::try_from(b).ok().filter(|b| *b > 0).ok_or_else(|| {
            malformed(
                "EBS",
                "ListChangedBlocks",
                region,
                format!("BlockSize {b} between {first} and {second}"),
            )
        })?,
    };
    Ok(ChangedBlocks { blocks, block_size })
}
