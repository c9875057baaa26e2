//! Flood limits of web chat, kept by each node: messages per visitor, and new visitor sessions
//! per client address. A visitor over the limit gets an error frame saying when to send again
//! (the message is not stored; resending the same `client_id` later stores it once); an
//! address over the limit gets 429.
//!
//! The counts are in memory (governor's keyed GCRA limiters): behind a load balancer spreading
//! one visitor over N nodes, the limit is N times looser. A flood is a burst against a socket,
//! which stays on one node, so that is the case that matters.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use uuid::Uuid;

use crate::settings::ChatFloodSettings;

/// Keys tracked before forgetting the ones that are back to a full allowance.
const TRACKED: usize = 10_000;

pub struct ChatLimits {
    messages: DefaultKeyedRateLimiter<Uuid>,
    sessions: DefaultKeyedRateLimiter<IpAddr>,
    clock: DefaultClock,
}

impl ChatLimits {
    pub fn new(settings: &ChatFloodSettings) -> Self {
        let per_minute = |n: u32| Quota::per_minute(NonZeroU32::new(n.max(1)).expect("at least 1"));
        Self {
            messages: RateLimiter::keyed(per_minute(settings.visitor_messages_per_minute)),
            sessions: RateLimiter::keyed(per_minute(settings.sessions_per_minute_per_address)),
            clock: DefaultClock::default(),
        }
    }

    /// Whether the visitor may send a message now; otherwise how long until it may.
    pub fn message(&self, visitor: Uuid) -> Result<(), Duration> {
        if self.messages.len() > TRACKED {
            self.messages.retain_recent();
        }
        self.messages
            .check_key(&visitor)
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    /// Whether the address may start a new visitor session now; otherwise how long until it may.
    pub fn session(&self, address: IpAddr) -> Result<(), Duration> {
        if self.sessions.len() > TRACKED {
            self.sessions.retain_recent();
        }
        self.sessions
            .check_key(&address)
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_visitor_and_address_has_its_own_allowance() {
        let limits = ChatLimits::new(&ChatFloodSettings {
            visitor_messages_per_minute: 3,
            sessions_per_minute_per_address: 2,
        });
        let (ana, luis) = (Uuid::now_v7(), Uuid::now_v7());
        for _ in 0..3 {
            assert!(limits.message(ana).is_ok());
        }
        let wait = limits.message(ana).expect_err("the fourth message in a minute");
        assert!(
            wait > Duration::from_secs(10) && wait <= Duration::from_secs(20),
            "{wait:?}"
        );
        assert!(limits.message(luis).is_ok(), "another visitor is not held back");

        let (here, there): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        assert!(limits.session(here).is_ok() && limits.session(here).is_ok());
        assert!(limits.session(here).is_err());
        assert!(limits.session(there).is_ok());
    }
}
