//! snaprelay's pure core.
//!
//! - [`policy`]: the policy file, parsed and validated.
//! - [`app`]: one entry per use case (plan, run, resume, check, retention, gc) that the CLI
//!   and a server call.
//! - [`plan`]: the planner, deciding which SPEC workflow applies to each resource and target.
//! - [`workflows`]: one file per SPEC workflow, read top to bottom as the SPEC lists its steps.
//! - [`engine`]: a session: inventory, plan, the tasks run with bounded concurrency, records.
//! - [`ports`]: the traits the adapters implement (cloud, state store).
//! - [`retention`], [`gc`]: what a policy keeps, and what a crash left.
//! - [`config`]: what a restore rebuilds, kept with each restore point.
//! - [`access`]: the key-policy and IAM-policy evaluator `check` will use (issue 6).
//!
//! Nothing here performs I/O except through the ports.

pub mod access;
pub mod app;
pub mod check;
pub mod config;
pub mod engine;
pub mod gc;
pub mod ids;
pub mod model;
pub mod plan;
pub mod policy;
pub mod ports;
pub mod report;
pub mod restore;
pub mod retention;
pub mod runtime;
pub mod schedule;
pub mod status;
pub mod workflows;
