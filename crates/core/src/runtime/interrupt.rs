//! Interruption (Ctrl-C, SIGTERM). An interrupted session starts no new work and stops
//! waiting, but still runs its cleanup: shares are removed and the snapshots of restore points
//! it cannot finish are deleted where AWS allows, and the report says what is left.

use std::time::Duration;

use tokio::sync::watch;

/// Tells the engine that the session should stop. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Interrupt(watch::Receiver<bool>);

/// Raises the interrupt.
#[derive(Debug)]
pub struct InterruptHandle(watch::Sender<bool>);

impl Interrupt {
    pub fn new() -> (InterruptHandle, Interrupt) {
        let (tx, rx) = watch::channel(false);
        (InterruptHandle(tx), Interrupt(rx))
    }

    /// An interrupt that is never raised.
    pub fn never() -> Interrupt {
        let (handle, interrupt) = Self::new();
        // Dropping the sender leaves the value false for good.
        drop(handle);
        interrupt
    }

    pub fn is_raised(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves when the interrupt is raised (never, if it cannot be any more).
    pub async fn raised(&self) {
        let mut rx = self.0.clone();
        if rx.wait_for(|raised| *raised).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// Sleeps for `d`, or less if interrupted; says whether it was.
    pub async fn sleep(&self, d: Duration) -> Result<(), Interrupted> {
        tokio::select! {
            () = tokio::time::sleep(d) => Ok(()),
            () = self.raised() => Err(Interrupted),
        }
    }
}

impl InterruptHandle {
    pub fn raise(&self) {
        self.0.send_replace(true);
    }
}

/// The session was interrupted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interrupted;

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the session was interrupted")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn an_interrupt_cuts_a_sleep_short() {
        let (handle, interrupt) = Interrupt::new();
        assert_eq!(interrupt.sleep(Duration::from_secs(1)).await, Ok(()));
        let sleeper = interrupt.clone();
        let waiting = tokio::spawn(async move { sleeper.sleep(Duration::from_secs(3600)).await });
        handle.raise();
        assert_eq!(waiting.await.unwrap(), Err(Interrupted));
        assert!(interrupt.is_raised());
    }

    #[tokio::test(start_paused = true)]
    async fn a_never_interrupt_never_fires() {
        let interrupt = Interrupt::never();
        assert_eq!(interrupt.sleep(Duration::from_secs(3600)).await, Ok(()));
        assert!(!interrupt.is_raised());
    }
}
