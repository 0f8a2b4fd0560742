//! Copy slots. AWS allows a limited number of snapshot copies in flight per account and
//! destination Region (EBS: 20, not adjustable: https://docs.aws.amazon.com/ebs/latest/userguide/ebs-copy-snapshot.html;
//! RDS: 20 DB snapshot copies in progress: https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/CHAP_Limits.html;
//! Aurora: 5 DB cluster snapshot copies: https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/USER_CopySnapshot.html).
//! Each copy takes a slot here before `CopySnapshot` is called and gives it back once it has
//! ended, so a large session queues instead of being refused. Copies made by others still
//! count against the quota at AWS: those refusals are retried.
//!
//! A free slot goes to the waiting copy with the most data (then the longest waiting): the
//! longest copies start first and the session does not end waiting for one large copy that
//! happened to queue last (longest-processing-time-first scheduling).

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::oneshot;

use crate::ids::AccountId;

/// Which copy quota: EBS snapshot copies, RDS DB snapshot copies and Aurora DB cluster
/// snapshot copies are counted apart.
pub use crate::report::Service;

type PlaceKey = (Service, AccountId, String);

struct Waiter {
    priority: u64,
    order: Reverse<u64>,
    grant: oneshot::Sender<()>,
}

impl PartialEq for Waiter {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Waiter {}
impl PartialOrd for Waiter {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Waiter {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.priority, self.order).cmp(&(other.priority, other.order))
    }
}

struct Place {
    free: usize,
    waiting: BinaryHeap<Waiter>,
    next: u64,
}

/// Told when a copy takes a slot (`+1`) and gives it back (`-1`): the copies in flight, per
/// service, account and destination Region (`serve`'s `snaprelay_copies_in_flight`).
pub trait SlotWatch: Send + Sync {
    fn in_flight(&self, service: Service, account: &AccountId, region: &str, change: i64);

    /// A session's copy to `account`/`region` moved `bytes` (told when the session has
    /// measured its copies, SPEC 6.5).
    fn copied(&self, _service: Service, _account: &AccountId, _region: &str, _bytes: u64) {}
}

struct Inner {
    ebs: usize,
    rds: usize,
    aurora: usize,
    places: Mutex<HashMap<PlaceKey, Place>>,
    watch: Option<Arc<dyn SlotWatch>>,
}

impl Inner {
    fn places(&self) -> MutexGuard<'_, HashMap<PlaceKey, Place>> {
        self.places.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn tell(&self, key: &PlaceKey, change: i64) {
        if let Some(w) = &self.watch {
            w.in_flight(key.0, &key.1, &key.2, change);
        }
    }

    /// Hands a freed slot to the first waiter still waiting, or keeps it free.
    fn release(&self, key: &PlaceKey) {
        let mut places = self.places();
        let Some(place) = places.get_mut(key) else {
            return;
        };
        while let Some(w) = place.waiting.pop() {
            if w.grant.send(()).is_ok() {
                return;
            }
        }
        place.free += 1;
    }
}

pub struct CopySlots {
    inner: Arc<Inner>,
}

/// A copy slot, given back when dropped.
pub struct Slot {
    inner: Arc<Inner>,
    key: PlaceKey,
}

impl Slot {
    fn new(inner: Arc<Inner>, key: PlaceKey) -> Self {
        inner.tell(&key, 1);
        Self { inner, key }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.inner.tell(&self.key, -1);
        self.inner.release(&self.key);
    }
}

/// A wait for a slot; if given up after the slot was granted, the slot is given back.
struct Pending {
    inner: Arc<Inner>,
    key: PlaceKey,
    grant: oneshot::Receiver<()>,
    done: bool,
}

impl Drop for Pending {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        self.grant.close();
        if self.grant.try_recv().is_ok() {
            self.inner.release(&self.key);
        }
    }
}

impl CopySlots {
    pub fn new(ebs: usize, rds: usize) -> Self {
        Self::watched(ebs, rds, None)
    }

    /// Slots whose taking and giving back is told to `watch`, with AWS's 5 Aurora copies.
    pub fn watched(ebs: usize, rds: usize, watch: Option<Arc<dyn SlotWatch>>) -> Self {
        Self::watched_with_aurora(ebs, rds, 5, watch)
    }

    /// Like [`Self::watched`], with `aurora` DB cluster snapshot copies per place.
    pub fn watched_with_aurora(
        ebs: usize,
        rds: usize,
        aurora: usize,
        watch: Option<Arc<dyn SlotWatch>>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                ebs: ebs.max(1),
                rds: rds.max(1),
                aurora: aurora.max(1),
                places: Mutex::new(HashMap::new()),
                watch,
            }),
        }
    }

    fn per_place(&self, service: Service) -> usize {
        match service {
            Service::Ebs => self.inner.ebs,
            Service::Rds => self.inner.rds,
            Service::Aurora => self.inner.aurora,
        }
    }

    /// Whether a slot of `service` in (account, Region) can be had without waiting.
    pub fn available(&self, service: Service, account: &AccountId, region: &str) -> bool {
        let key = (service, account.clone(), region.to_owned());
        let places = self.inner.places();
        places
            .get(&key)
            .is_none_or(|p| p.free > 0 && p.waiting.is_empty())
    }

    /// Waits for a slot of `service` in (account, Region). Among waiting copies, the one with
    /// the highest `priority` (its size in GiB) gets the next free slot.
    pub async fn acquire(
        &self,
        service: Service,
        account: &AccountId,
        region: &str,
        priority: u64,
    ) -> Slot {
        let key = (service, account.clone(), region.to_owned());
        let grant = {
            let mut places = self.inner.places();
            let place = places.entry(key.clone()).or_insert_with(|| Place {
                free: self.per_place(service),
                waiting: BinaryHeap::new(),
                next: 0,
            });
            if place.free > 0 && place.waiting.is_empty() {
                place.free -= 1;
                drop(places);
                return Slot::new(self.inner.clone(), key);
            }
            let (tx, rx) = oneshot::channel();
            place.next += 1;
            place.waiting.push(Waiter {
                priority,
                order: Reverse(place.next),
                grant: tx,
            });
            rx
        };
        let mut pending = Pending {
            inner: self.inner.clone(),
            key: key.clone(),
            grant,
            done: false,
        };
        // The sender lives in the heap until it is used; it is dropped unused only with the
        // whole CopySlots, which outlives every wait.
        let granted = (&mut pending.grant).await.is_ok();
        pending.done = granted;
        if !granted {
            std::future::pending::<()>().await;
        }
        Slot::new(self.inner.clone(), key)
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
        let slots = CopySlots::new(2, 2);
        let a = slots
            .acquire(Service::Ebs, &account(), "eu-west-1", 0)
            .await;
        let b = slots
            .acquire(Service::Ebs, &account(), "eu-west-1", 0)
            .await;
        assert!(!slots.available(Service::Ebs, &account(), "eu-west-1"));
        assert!(
            slots.available(Service::Rds, &account(), "eu-west-1"),
            "RDS copies have their own quota"
        );
        assert!(
            slots.available(Service::Ebs, &account(), "us-west-2"),
            "another Region has its own quota"
        );
        drop(a);
        assert!(slots.available(Service::Ebs, &account(), "eu-west-1"));
        drop(b);
    }

    #[tokio::test]
    async fn a_freed_slot_goes_to_the_largest_waiting_copy() {
        let slots = CopySlots::new(1, 1);
        let held = slots
            .acquire(Service::Ebs, &account(), "eu-west-1", 0)
            .await;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let wait = |size: u64| {
            let tx = tx.clone();
            let slots = &slots;
            async move {
                let slot = slots
                    .acquire(Service::Ebs, &account(), "eu-west-1", size)
                    .await;
                tx.send(size).unwrap();
                drop(slot);
            }
        };
        let all = futures_util::future::join4(wait(8), wait(500), wait(100), async {
            tokio::task::yield_now().await;
            drop(held);
        });
        all.await;
        let order: Vec<u64> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
        assert_eq!(order, vec![500, 100, 8]);
    }

    #[tokio::test]
    async fn a_wait_given_up_does_not_lose_the_slot() {
        let slots = CopySlots::new(1, 1);
        let held = slots
            .acquire(Service::Rds, &account(), "eu-west-1", 0)
            .await;
        let other = account();
        {
            let waiting = slots.acquire(Service::Rds, &other, "eu-west-1", 0);
            let _ = tokio::time::timeout(std::time::Duration::from_millis(1), waiting).await;
        }
        drop(held);
        assert!(slots.available(Service::Rds, &account(), "eu-west-1"));
    }
}
