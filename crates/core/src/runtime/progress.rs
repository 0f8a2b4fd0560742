//! Where a session's events go: progress for a person or a machine watching ([`Progress`], a
//! sink the CLI renders as text or JSON lines, a server as its own), and the records the
//! workflows write as they go ([`Record`], the engine's recorder in front of the state store).

use crate::ports::StepId;
use crate::report::{ResourceReport, RestorePoint, StepRecord};

/// Where a session tells what it is doing, for a person watching.
pub trait Progress: Send + Sync {
    fn update(&self, resource: &str, message: &str);
    /// Something the operator should read whoever is watching (a resume, a refusal).
    fn notice(&self, _message: &str) {}
    /// A step has ended (after it was recorded in the state store).
    fn step(&self, _step: &StepRecord) {}
    /// A resource's task has ended: `ended` of the session's `total` are done.
    fn task_ended(&self, _report: &ResourceReport, _ended: usize, _total: usize) {}
}

/// What the workflows record through (implemented by the engine's recorder).
#[async_trait::async_trait]
pub trait Record: Sync {
    async fn step(&self, step: &StepRecord);
    /// A step that changes AWS is about to be made; returns what [`Record::end_step`] takes.
    async fn begin_step(&self, step: &StepRecord) -> Option<StepId>;
    async fn end_step(&self, begun: Option<StepId>, step: &StepRecord);
    async fn restore_point(&self, point: &RestorePoint);
    fn progress(&self, resource: &str, message: &str);
}
