//! The hub's domain: typed ids, enumerations and the records agents work with.

mod ids;
mod records;

pub use ids::*;
pub use records::*;
pub use switchboard_connectors::{
    AttachmentMeta, ChannelKind, Direction, EmailAddress, Handle, HandleKind, PhoneNumber, Region,
};

use time::OffsetDateTime;

/// An instant as stored: microseconds since the Unix epoch, UTC.
pub fn to_micros(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000) as i64
}

/// The inverse of [`to_micros`]; out-of-range values clamp to the epoch rather than panic.
pub fn from_micros(us: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1_000).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// The current instant, truncated to what the store keeps.
pub fn now() -> OffsetDateTime {
    from_micros(to_micros(OffsetDateTime::now_utc()))
}

/// An unknown name for an enumerated value, named in the error.
#[derive(Debug, thiserror::Error)]
#[error("unknown {what} {value:?}")]
pub struct UnknownName {
    pub what: &'static str,
    pub value: String,
}

macro_rules! named_enum {
    ($(#[$meta:meta])* $name:ident, $what:literal { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ::serde::Serialize, ::serde::Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$(Self::$variant),+];
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::domain::UnknownName;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok(Self::$variant),)+
                    other => Err($crate::domain::UnknownName { what: $what, value: other.to_owned() }),
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use named_enum;

named_enum!(
    /// Where a conversation stands.
    ConversationStatus, "status" {
        Open = "open",
        /// Waiting on the customer.
        Pending = "pending",
        Snoozed = "snoozed",
        Resolved = "resolved",
    }
);

named_enum!(
    /// How urgently a conversation must be answered.
    Priority, "priority" { Low = "low", Normal = "normal", High = "high", Urgent = "urgent" }
);

named_enum!(
    /// What an agent may do. Each role can do everything the one before it can.
    Role, "role" { Agent = "agent", Supervisor = "supervisor", Admin = "admin" }
);

impl Role {
    /// Whether this role includes `other`'s permissions.
    pub fn at_least(self, other: Role) -> bool {
        let rank = |r: Role| match r {
            Role::Agent => 0,
            Role::Supervisor => 1,
            Role::Admin => 2,
        };
        rank(self) >= rank(other)
    }
}

named_enum!(
    /// Whether an agent is at their desk. An agent with no console open is offline.
    Presence, "presence" { Online = "online", Away = "away", Offline = "offline" }
);

named_enum!(
    /// Where an outbound message stands in the outbox.
    DeliveryStatus, "delivery status" { Pending = "pending", Sent = "sent", Failed = "failed" }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn micros_round_trip_and_survive_absurd_values() {
        let t = now();
        assert_eq!(from_micros(to_micros(t)), t);
        assert_eq!(from_micros(i64::MAX), OffsetDateTime::UNIX_EPOCH);
    }

    #[test]
    fn named_enums_parse_their_names_and_name_the_bad_ones() {
        for s in ConversationStatus::ALL {
            assert_eq!(s.as_str().parse::<ConversationStatus>().unwrap(), *s);
        }
        assert_eq!(
            "closed".parse::<ConversationStatus>().unwrap_err().to_string(),
            "unknown status \"closed\""
        );
        assert!(Role::Admin.at_least(Role::Supervisor) && !Role::Agent.at_least(Role::Supervisor));
    }
}
