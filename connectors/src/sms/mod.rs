//! SMS: Twilio's webhooks and REST API, and a generic signed JSON format for other gateways.

pub mod generic;
pub mod twilio;

/// Where a provider says an outbound message is. Callbacks may arrive out of order, so each
/// state has a rank and a state only ever replaces one of lower rank.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    Accepted,
    Scheduled,
    Queued,
    Sending,
    Sent,
    Delivered,
    Undelivered,
    Failed,
    Canceled,
    Read,
}

impl DeliveryState {
    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "accepted" => Self::Accepted,
            "scheduled" => Self::Scheduled,
            "queued" => Self::Queued,
            "sending" => Self::Sending,
            "sent" => Self::Sent,
            "delivered" => Self::Delivered,
            "undelivered" => Self::Undelivered,
            "failed" => Self::Failed,
            "canceled" => Self::Canceled,
            "read" => Self::Read,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Scheduled => "scheduled",
            Self::Queued => "queued",
            Self::Sending => "sending",
            Self::Sent => "sent",
            Self::Delivered => "delivered",
            Self::Undelivered => "undelivered",
            Self::Failed => "failed",
            Self::Canceled => "canceled",
            Self::Read => "read",
        }
    }

    /// Later states rank higher; the final outcomes share a rank below `read`, which only a
    /// delivered message can reach.
    pub fn rank(self) -> i64 {
        match self {
            Self::Accepted | Self::Scheduled => 1,
            Self::Queued => 2,
            Self::Sending => 3,
            Self::Sent => 4,
            Self::Delivered | Self::Undelivered | Self::Failed | Self::Canceled => 5,
            Self::Read => 6,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_late_sent_ranks_below_delivered_and_failed() {
        let sent = DeliveryState::parse("sent").unwrap();
        for later in ["delivered", "undelivered", "failed", "read"] {
            assert!(DeliveryState::parse(later).unwrap().rank() > sent.rank(), "{later}");
        }
        assert!(DeliveryState::parse("queued").unwrap().rank() < sent.rank());
        assert_eq!(DeliveryState::parse("bogus"), None);
    }
}
