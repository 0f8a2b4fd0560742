//! Copy slots. AWS allows a limited number of snapshot copies in flight per account and
//! destination Region (EBS: 20, not adjustable: https://docs.aws.amazon.com/ebs/latest/userguide/ebs-copy-snapshot.html;
//! RDS: 20 DB snapshot copies in progress: https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/CHAP_Limits.html).
//! A restore point's copies take their slots here before `CopySnapshot` is called and give
//! them back once the copies have ended, so a large session queues instead of being refused.
//! Copies made by others still count against the quota at AWS: those refusals are retried.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::ids::AccountId;

/// Which copy quota: EBS snapshot copies and RDS DB snapshot copies are counted apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Service {
    Ebs,
    Rds,
}

pub struct CopySlots {
    ebs: usize,
    rds: usize,
    places: Mutex<HashMap<(Service, AccountId, String), Arc<Semaphore>>>,
}

impl CopySlots {
    pub fn new(ebs: usize, rds: usize) -> Self {
        Self {
            ebs: ebs.max(1),
            rds: rds.max(1),
            places: Mutex::new(HashMap::new()),
        }
    }

    fn per_place(&self, service: Service) -> usize {
        match service {
            Service::Ebs => self.ebs,
            Service::Rds => self.rds,
        }
    }

    /// Whether `n` slots of `service` in (account, Region) can be had without waiting.
    pub fn available(&self, service: Service, account: &AccountId, region: &str, n: usize) -> bool {
        self.place(service, account, region).available_permits() >= self.cap(service, n)
    }

    /// Waits for `n` slots of `service` (at most the whole quota) in (account, Region).
    pub async fn acquire(
        &self,
        service: Service,
        account: &AccountId,
        region: &str,
        n: usize,
    ) -> OwnedSemaphorePermit {
        let n = self.cap(service, n) as u32;
        match self
            .place(service, account, region)
            .acquire_many_owned(n)
            .await
        {
            Ok(permit) => permit,
            // The semaphores are never closed.
            Err(_) => unreachable!("copy slot semaphores are never closed"),
        }
    }

    fn cap(&self, service: Service, n: usize) -> usize {
        n.clamp(1, self.per_place(service))
    }

    fn place(&self, service: Service, account: &AccountId, region: &str) -> Arc<Semaphore> {
        let mut places = self.places.lock().unwrap_or_else(|p| p.into_inner());
        places
            .entry((service, account.clone(), region.to_owned()))
            .or_insert_with(|| Arc::new(Semaphore::new(self.per_place(service))))
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account() -> AccountId {
        AccountId::parse("222222222222").unwrap()
    }

    #[tokio::test]
    async fn copies_beyond_the_quota_wait_for_a_slot_per_account_and_region() {
        let slots = CopySlots::new(20, 20);
        let first = slots
            .acquire(Service::Ebs, &account(), "eu-west-1", 15)
            .await;
        assert!(!slots.available(Service::Ebs, &account(), "eu-west-1", 6));
        assert!(slots.available(Service::Ebs, &account(), "eu-west-1", 5));
        assert!(
            slots.available(Service::Rds, &account(), "eu-west-1", 20),
            "RDS copies have their own quota"
        );
        assert!(
            slots.available(Service::Ebs, &account(), "us-west-2", 20),
            "another Region has its own quota"
        );
        drop(first);
        assert!(slots.available(Service::Ebs, &account(), "eu-west-1", 20));
    }

    #[tokio::test]
    async fn a_restore_point_larger_than_the_quota_takes_the_whole_quota() {
        let slots = CopySlots::new(20, 5);
        let all = slots
            .acquire(Service::Ebs, &account(), "eu-west-1", 27)
            .await;
        assert_eq!(all.num_permits(), 20);
    }
}
