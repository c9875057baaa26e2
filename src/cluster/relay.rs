//! Events across nodes, through PostgreSQL `LISTEN/NOTIFY`.
//!
//! What a node publishes on its bus is also handed to the relay, which sends it to the other
//! nodes as a small notice: ids and sequence numbers, never the rows themselves (a notice holds
//! at most 8,000 bytes, and the store already holds the truth). A receiving node reads the rows
//! its notice names and publishes the event to its own listeners: the agent sockets, chat
//! visitors, its indexer and its dashboard. Events are batched into as few notices as fit, in
//! the order they were published.
//!
//! Notifications are not durable: a node that loses its listening connection misses what was
//! sent meanwhile. Nothing is lost from the store or the index (each node tails the store's
//! sequence), only live pushes; consoles resync on their next change, as after a local lag.

use serde::{Deserialize, Serialize};
use sqlx::postgres::PgListener;
use tokio::sync::{mpsc, watch};
use tracing::{debug, warn};

use super::NodeId;
use crate::bus::{Activity, HubEvent};
use crate::domain::*;
use crate::hub::Hub;
use crate::metrics::definitions::SampleKind;
use crate::store::StoreError;

/// The notification channel every node listens on.
const CHANNEL: &str = "switchboard_events";
/// Largest notice sent; PostgreSQL's limit is 8,000 bytes.
const MAX_NOTICE: usize = 7_500;
/// Most events taken from the queue for one round of notices.
const ROUND: usize = 256;

/// One notice: which node sent it, and its events in order.
#[derive(Serialize, Deserialize)]
struct Notice {
    node: uuid::Uuid,
    events: Vec<Wire>,
}

/// An event as it travels: ids, for the receiver to read the rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
enum Wire {
    Interaction {
        id: InteractionId,
        seq: i64,
        updated: bool,
    },
    Conversation {
        id: ConversationId,
    },
    ScreenPop {
        agent_id: AgentId,
        call_id: String,
        number: String,
    },
    Activity {
        agent_id: AgentId,
        agent_name: String,
        conversation_id: ConversationId,
        channel_account_id: ChannelAccountId,
        activity: Activity,
    },
    Presence {
        agent_id: AgentId,
    },
    Delivery {
        interaction_id: InteractionId,
        channel_account_id: ChannelAccountId,
    },
    Breach {
        conversation_id: ConversationId,
        channel_account_id: ChannelAccountId,
        target: SampleKind,
        #[serde(with = "time::serde::rfc3339")]
        due_at: time::OffsetDateTime,
    },
    SessionsEnded {
        agent_id: AgentId,
    },
    MetricsRecomputed,
    Read {
        conversation_id: ConversationId,
        channel_account_id: ChannelAccountId,
        seq: i64,
    },
    Typing {
        conversation_id: ConversationId,
        channel_account_id: ChannelAccountId,
    },
}

impl Wire {
    fn of(event: &HubEvent) -> Option<Self> {
        Some(match event {
            HubEvent::InteractionCreated { interaction } => Self::Interaction {
                id: interaction.id,
                seq: interaction.seq,
                updated: false,
            },
            HubEvent::InteractionUpdated { interaction } => Self::Interaction {
                id: interaction.id,
                seq: interaction.seq,
                updated: true,
            },
            HubEvent::ConversationChanged { conversation } => Self::Conversation { id: conversation.id },
            HubEvent::ScreenPop { agent_id, pop } => Self::ScreenPop {
                agent_id: *agent_id,
                call_id: pop.call_id.clone(),
                number: pop.number.clone(),
            },
            HubEvent::AgentActivity {
                agent_id,
                agent_name,
                conversation_id,
                channel_account_id,
                activity,
            } => Self::Activity {
                agent_id: *agent_id,
                agent_name: agent_name.clone(),
                conversation_id: *conversation_id,
                channel_account_id: *channel_account_id,
                activity: *activity,
            },
            HubEvent::PresenceChanged { agent } => Self::Presence { agent_id: agent.id },
            HubEvent::DeliveryChanged {
                interaction_id,
                channel_account_id,
            } => Self::Delivery {
                interaction_id: *interaction_id,
                channel_account_id: *channel_account_id,
            },
            HubEvent::SlaBreached {
                conversation_id,
                channel_account_id,
                target,
                due_at,
            } => Self::Breach {
                conversation_id: *conversation_id,
                channel_account_id: *channel_account_id,
                target: *target,
                due_at: *due_at,
            },
            HubEvent::SessionsEnded { agent_id } => Self::SessionsEnded { agent_id: *agent_id },
            HubEvent::MetricsRecomputed => Self::MetricsRecomputed,
            HubEvent::CustomerRead {
                conversation_id,
                channel_account_id,
                seq,
            } => Self::Read {
                conversation_id: *conversation_id,
                channel_account_id: *channel_account_id,
                seq: *seq,
            },
            HubEvent::CustomerTyping {
                conversation_id,
                channel_account_id,
            } => Self::Typing {
                conversation_id: *conversation_id,
                channel_account_id: *channel_account_id,
            },
            HubEvent::Dashboard { .. } => return None,
        })
    }

    /// The event again, with the rows it names read from the store.
    async fn into_event(self, hub: &Hub) -> Result<HubEvent, StoreError> {
        Ok(match self {
            Self::Interaction { id, updated, .. } => {
                let interaction = Box::new(hub.store.interaction(id).await?);
                hub.search.wake();
                match updated {
                    false => HubEvent::InteractionCreated { interaction },
                    true => HubEvent::InteractionUpdated { interaction },
                }
            }
            Self::Conversation { id } => HubEvent::ConversationChanged {
                conversation: Box::new(hub.store.conversation(id).await?),
            },
            Self::ScreenPop {
                agent_id,
                call_id,
                number,
            } => HubEvent::ScreenPop {
                agent_id,
                pop: Box::new(crate::voice::pop_for(hub, agent_id, &call_id, &number).await?),
            },
            Self::Activity {
                agent_id,
                agent_name,
                conversation_id,
                channel_account_id,
                activity,
            } => HubEvent::AgentActivity {
                agent_id,
                agent_name,
                conversation_id,
                channel_account_id,
                activity,
            },
            Self::Presence { agent_id } => HubEvent::PresenceChanged {
                agent: Box::new(hub.store.agent(agent_id).await?),
            },
            Self::Delivery {
                interaction_id,
                channel_account_id,
            } => HubEvent::DeliveryChanged {
                interaction_id,
                channel_account_id,
            },
            Self::Breach {
                conversation_id,
                channel_account_id,
                target,
                due_at,
            } => HubEvent::SlaBreached {
                conversation_id,
                channel_account_id,
                target,
                due_at,
            },
            Self::SessionsEnded { agent_id } => HubEvent::SessionsEnded { agent_id },
            Self::MetricsRecomputed => HubEvent::MetricsRecomputed,
            Self::Read {
                conversation_id,
                channel_account_id,
                seq,
            } => HubEvent::CustomerRead {
                conversation_id,
                channel_account_id,
                seq,
            },
            Self::Typing {
                conversation_id,
                channel_account_id,
            } => HubEvent::CustomerTyping {
                conversation_id,
                channel_account_id,
            },
        })
    }
}

/// Packs `events` into notices of at most [`MAX_NOTICE`] bytes each, in order.
fn notices(node: NodeId, events: &[Wire]) -> Vec<String> {
    let encode = |events: &[Wire]| {
        serde_json::to_string(&Notice {
            node: node.0,
            events: events.to_vec(),
        })
        .expect("notices serialise")
    };
    let envelope = encode(&[]).len();
    let mut out = Vec::new();
    let (mut start, mut size) = (0, envelope);
    for (i, event) in events.iter().enumerate() {
        // The event and the comma before it.
        let len = serde_json::to_string(event).expect("events serialise").len() + 1;
        if i > start && size + len > MAX_NOTICE {
            out.push(encode(&events[start..i]));
            (start, size) = (i, envelope);
        }
        size += len;
    }
    if start < events.len() {
        out.push(encode(&events[start..]));
    }
    out
}

/// Runs the relay until `shutdown` changes: sends this node's events and publishes the other
/// nodes' here.
pub async fn run(hub: Hub, database_url: String, outgoing: mpsc::Receiver<HubEvent>, shutdown: watch::Receiver<bool>) {
    let sender = tokio::spawn(send(hub.clone(), outgoing, shutdown.clone()));
    listen(hub, database_url, shutdown).await;
    let _ = sender.await;
}

async fn send(hub: Hub, mut outgoing: mpsc::Receiver<HubEvent>, mut shutdown: watch::Receiver<bool>) {
    let mut round = Vec::with_capacity(ROUND);
    loop {
        round.clear();
        tokio::select! {
            received = outgoing.recv_many(&mut round, ROUND) => if received == 0 { return },
            _ = shutdown.changed() => return,
        }
        let wires: Vec<Wire> = round.iter().filter_map(Wire::of).collect();
        for notice in notices(hub.node, &wires) {
            let sent = sqlx::query("SELECT pg_notify($1, $2)")
                .bind(CHANNEL)
                .bind(notice)
                .execute(hub.store.reader())
                .await;
            if let Err(error) = sent {
                metrics::counter!("switchboard_relay_dropped_total").increment(1);
                warn!(%error, "events not relayed to the other nodes");
            }
        }
    }
}

async fn listen(hub: Hub, database_url: String, mut shutdown: watch::Receiver<bool>) {
    let mut listener = loop {
        let connected = async {
            let mut listener = PgListener::connect(&database_url).await?;
            listener.listen(CHANNEL).await?;
            Ok::<_, sqlx::Error>(listener)
        };
        match connected.await {
            Ok(listener) => break listener,
            Err(error) => {
                warn!(%error, "cannot listen for the other nodes' events; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                    _ = shutdown.changed() => return,
                }
            }
        }
    };
    loop {
        let received = tokio::select! {
            received = listener.try_recv() => received,
            _ = shutdown.changed() => return,
        };
        let notification = match received {
            Ok(Some(notification)) => notification,
            Ok(None) => {
                warn!("lost the connection listening for the other nodes' events; reconnecting");
                continue;
            }
            Err(error) => {
                warn!(%error, "listening for the other nodes' events failed; retrying");
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                continue;
            }
        };
        let notice: Notice = match serde_json::from_str(notification.payload()) {
            Ok(notice) => notice,
            Err(error) => {
                warn!(%error, "a notice on the events channel does not parse; ignored");
                continue;
            }
        };
        if notice.node == hub.node.0 {
            continue;
        }
        for wire in notice.events {
            match wire.clone().into_event(&hub).await {
                Ok(event) => hub.bus.publish_relayed(event),
                // A row deleted since (a merge, a retention job) has nothing left to show.
                Err(error) => debug!(?wire, %error, "relayed event skipped"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_packed_in_order_into_notices_that_fit() {
        let node = NodeId::new();
        let wires: Vec<Wire> = (0..400)
            .map(|seq| Wire::Interaction {
                id: InteractionId::new(),
                seq,
                updated: seq % 2 == 0,
            })
            .collect();
        let notices = notices(node, &wires);
        assert!(notices.len() > 1, "400 events do not fit one notice");
        let mut back = Vec::new();
        for notice in &notices {
            assert!(notice.len() <= MAX_NOTICE, "{} bytes", notice.len());
            let parsed: Notice = serde_json::from_str(notice).unwrap();
            assert_eq!(parsed.node, node.0);
            back.extend(parsed.events);
        }
        assert_eq!(back, wires);
    }
}
