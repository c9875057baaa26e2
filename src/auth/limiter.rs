//! Failed-login limiting per account, so passwords cannot be guessed at speed.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct LoginLimiter {
    max_failures: u32,
    window: Duration,
    failures: Mutex<HashMap<String, (u32, Instant)>>,
}

impl LoginLimiter {
    pub fn new(max_failures: u32, window: Duration) -> Self {
        Self {
            max_failures,
            window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `key` may try to log in now.
    pub fn allowed(&self, key: &str) -> bool {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        match map.get(key) {
            Some((_, since)) if since.elapsed() > self.window => {
                map.remove(key);
                true
            }
            Some((count, _)) => *count < self.max_failures,
            None => true,
        }
    }

    pub fn failed(&self, key: &str) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        // Forget stale entries now and then so the map cannot grow without bound.
        if map.len() > 10_000 {
            let window = self.window;
            map.retain(|_, (_, since)| since.elapsed() <= window);
        }
        let entry = map.entry(key.to_owned()).or_insert((0, Instant::now()));
        entry.0 += 1;
    }

    pub fn succeeded(&self, key: &str) {
        self.failures.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_is_locked_after_too_many_failures_and_a_success_resets_it() {
        let limiter = LoginLimiter::new(3, Duration::from_secs(60));
        for _ in 0..3 {
            assert!(limiter.allowed("ana@x.es"));
            limiter.failed("ana@x.es");
        }
        assert!(!limiter.allowed("ana@x.es"));
        assert!(limiter.allowed("luis@x.es"));
        limiter.succeeded("ana@x.es");
        assert!(limiter.allowed("ana@x.es"));
    }

    #[test]
    fn the_lock_lifts_when_the_window_passes() {
        let limiter = LoginLimiter::new(1, Duration::from_millis(1));
        limiter.failed("k");
        std::thread::sleep(Duration::from_millis(5));
        assert!(limiter.allowed("k"));
    }
}
