//! The hub's clock. Production reads the system clock; tests hand the hub a manual clock and
//! move it, so time-based behaviour (response times, business hours, SLA deadlines and
//! breaches) is tested at exact instants instead of by sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use time::OffsetDateTime;

use crate::domain::{from_micros, now, to_micros};

#[derive(Clone, Default)]
pub struct Clock {
    /// Microseconds since the epoch when manual; `None` follows the system clock.
    manual: Option<Arc<AtomicI64>>,
}

impl Clock {
    pub fn system() -> Self {
        Self { manual: None }
    }

    /// A clock that stands still at `at` until moved.
    pub fn manual(at: OffsetDateTime) -> Self {
        Self {
            manual: Some(Arc::new(AtomicI64::new(to_micros(at)))),
        }
    }

    pub fn now(&self) -> OffsetDateTime {
        match &self.manual {
            Some(micros) => from_micros(micros.load(Ordering::SeqCst)),
            None => now(),
        }
    }

    /// Moves a manual clock to `at` (a system clock ignores it).
    pub fn set(&self, at: OffsetDateTime) {
        if let Some(micros) = &self.manual {
            micros.store(to_micros(at), Ordering::SeqCst);
        }
    }

    pub fn advance(&self, by: time::Duration) {
        self.set(self.now() + by);
    }
}
