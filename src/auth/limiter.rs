//! Failed-login limiting per account, so passwords cannot be guessed at speed. The counts live
//! in the store, so the limit holds whichever node of several a request reaches.

use time::Duration;

use crate::clock::Clock;
use crate::store::{Store, StoreError};

pub struct LoginLimiter {
    store: Store,
    clock: Clock,
    max_failures: u32,
    window: Duration,
}

impl LoginLimiter {
    pub fn new(store: Store, clock: Clock, max_failures: u32, window: std::time::Duration) -> Self {
        Self {
            store,
            clock,
            max_failures,
            window: Duration::try_from(window).unwrap_or(Duration::MAX),
        }
    }

    /// Whether `key` may try to log in now.
    pub async fn allowed(&self, key: &str) -> Result<bool, StoreError> {
        let failures = self.store.login_failures(key, self.clock.now() - self.window).await?;
        Ok(failures < i64::from(self.max_failures))
    }

    pub async fn failed(&self, key: &str) -> Result<(), StoreError> {
        let now = self.clock.now();
        self.store.record_login_failure(key, now, now - self.window).await
    }

    pub async fn succeeded(&self, key: &str) -> Result<(), StoreError> {
        self.store.clear_login_failures(key).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn limiter(max: u32, clock: &Clock) -> (LoginLimiter, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/limits.db", dir.path().display());
        let store = Store::connect(&url, 2).await.unwrap();
        let limiter = LoginLimiter::new(store, clock.clone(), max, std::time::Duration::from_secs(60));
        (limiter, dir)
    }

    #[tokio::test]
    async fn an_account_is_locked_after_too_many_failures_and_a_success_resets_it() {
        let clock = Clock::manual(time::macros::datetime!(2026-11-23 10:00 UTC));
        let (limiter, _dir) = limiter(3, &clock).await;
        for _ in 0..3 {
            assert!(limiter.allowed("ana@x.es").await.unwrap());
            limiter.failed("ana@x.es").await.unwrap();
        }
        assert!(!limiter.allowed("ana@x.es").await.unwrap());
        assert!(limiter.allowed("luis@x.es").await.unwrap());
        limiter.succeeded("ana@x.es").await.unwrap();
        assert!(limiter.allowed("ana@x.es").await.unwrap());
    }

    #[tokio::test]
    async fn the_lock_lifts_when_the_window_passes_and_a_later_failure_counts_afresh() {
        let clock = Clock::manual(time::macros::datetime!(2026-11-23 10:00 UTC));
        let (limiter, _dir) = limiter(2, &clock).await;
        limiter.failed("k").await.unwrap();
        limiter.failed("k").await.unwrap();
        assert!(!limiter.allowed("k").await.unwrap());
        clock.advance(time::Duration::seconds(61));
        assert!(limiter.allowed("k").await.unwrap());
        limiter.failed("k").await.unwrap();
        assert!(limiter.allowed("k").await.unwrap(), "the old failures no longer count");
        limiter.failed("k").await.unwrap();
        assert!(!limiter.allowed("k").await.unwrap());
    }
}
