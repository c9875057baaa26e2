//! The in-process event bus: what happened, published after the commit that made it true.
//!
//! Receivers that fall behind get `Lagged` from tokio's broadcast channel and must resync from
//! the store; nothing here buffers without bound.

use serde::Serialize;
use tokio::sync::{broadcast, mpsc};

use crate::domain::*;

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum HubEvent {
    InteractionCreated {
        interaction: Box<Interaction>,
    },
    /// A stored interaction changed (a call's late events revised it).
    InteractionUpdated {
        interaction: Box<Interaction>,
    },
    ConversationChanged {
        conversation: Box<Conversation>,
    },
    /// An incoming call for one agent: the caller's history, shown the moment it rings.
    ScreenPop {
        agent_id: AgentId,
        pop: Box<ScreenPop>,
    },
    /// An agent opened, is writing in, or left a conversation ("Bea is replying"), so two
    /// agents do not answer the same customer twice.
    AgentActivity {
        agent_id: AgentId,
        agent_name: String,
        conversation_id: ConversationId,
        channel_account_id: ChannelAccountId,
        activity: Activity,
    },
    /// An agent went online, away or offline.
    PresenceChanged {
        agent: Box<Agent>,
    },
    /// An outbound message's delivery moved on (sent, failed, or a provider's receipt).
    DeliveryChanged {
        interaction_id: InteractionId,
        channel_account_id: ChannelAccountId,
    },
    /// An SLA deadline passed unmet; recorded exactly once.
    SlaBreached {
        conversation_id: ConversationId,
        channel_account_id: ChannelAccountId,
        target: crate::metrics::definitions::SampleKind,
        #[serde(with = "time::serde::rfc3339")]
        due_at: time::OffsetDateTime,
    },
    /// The supervisors' dashboard, after something moved; only supervisors' sockets get it.
    Dashboard {
        snapshot: Box<crate::metrics::dashboard::Snapshot>,
    },
    /// An agent's sessions were ended (a password change): their sockets opened with an ended
    /// session close.
    SessionsEnded {
        agent_id: AgentId,
    },
    /// The metrics worker stored new figures (on whichever node holds its lease): every node
    /// refreshes its supervisors' dashboard. Not sent to consoles.
    MetricsRecomputed,
    /// The customer has read the conversation up to `seq` (a chat visitor's read receipt).
    CustomerRead {
        conversation_id: ConversationId,
        channel_account_id: ChannelAccountId,
        seq: i64,
    },
    /// The customer is typing in a chat.
    CustomerTyping {
        conversation_id: ConversationId,
        channel_account_id: ChannelAccountId,
    },
}

impl HubEvent {
    /// The inbox an event is about, for sending it only to agents who may see that inbox;
    /// `None` for events about no inbox (presence, the dashboard) or for one agent (screen pops).
    pub fn channel_account(&self) -> Option<ChannelAccountId> {
        match self {
            Self::InteractionCreated { interaction } | Self::InteractionUpdated { interaction } => {
                Some(interaction.channel_account_id)
            }
            Self::ConversationChanged { conversation } => Some(conversation.channel_account_id),
            Self::AgentActivity { channel_account_id, .. }
            | Self::DeliveryChanged { channel_account_id, .. }
            | Self::SlaBreached { channel_account_id, .. }
            | Self::CustomerTyping { channel_account_id, .. }
            | Self::CustomerRead { channel_account_id, .. } => Some(*channel_account_id),
            Self::ScreenPop { .. }
            | Self::PresenceChanged { .. }
            | Self::Dashboard { .. }
            | Self::MetricsRecomputed
            | Self::SessionsEnded { .. } => None,
        }
    }
}

impl HubEvent {
    /// Whether the other nodes need the event. Each node computes its own dashboard (from the
    /// store, when it hears that something changed), so snapshots never travel.
    pub fn crosses_nodes(&self) -> bool {
        !matches!(self, Self::Dashboard { .. })
    }
}

/// What an agent is doing in a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activity {
    Viewing,
    Replying,
    Left,
}

/// What an agent's screen shows when a call rings.
#[derive(Debug, Clone, Serialize)]
pub struct ScreenPop {
    pub call_id: String,
    /// The caller's number, in E.164 when it parses.
    pub number: String,
    /// `None` for a new caller: the console offers to create the contact.
    pub contact: Option<Contact>,
    pub open_conversations: Vec<Conversation>,
    /// The latest touchpoints on every channel, newest first.
    pub interactions: Vec<Interaction>,
}

#[derive(Clone)]
pub struct EventBus {
    sender: broadcast::Sender<HubEvent>,
    /// Events for the other nodes, when there are others ([`crate::cluster::relay`]).
    relay: Option<mpsc::Sender<HubEvent>>,
}

impl EventBus {
    /// A bus for this node alone.
    pub fn new(capacity: usize) -> Self {
        Self {
            sender: broadcast::channel(capacity).0,
            relay: None,
        }
    }

    /// A bus that also hands what is published here to the relay, for the other nodes.
    pub fn relayed(capacity: usize) -> (Self, mpsc::Receiver<HubEvent>) {
        let (relay, outgoing) = mpsc::channel(capacity);
        let bus = Self {
            sender: broadcast::channel(capacity).0,
            relay: Some(relay),
        };
        (bus, outgoing)
    }

    /// Publishes to whoever listens now, on this node and (through the relay) on the others;
    /// with no listener the event is simply not needed.
    pub fn publish(&self, event: HubEvent) {
        if let Some(relay) = &self.relay
            && event.crosses_nodes()
            && relay.try_send(event.clone()).is_err()
        {
            // The relay is behind by a whole buffer: the other nodes' consoles miss this one
            // and resync on their next change, as a lagging local socket does.
            metrics::counter!("switchboard_relay_dropped_total").increment(1);
        }
        let _ = self.sender.send(event);
    }

    /// Publishes an event that happened on another node, to this node's listeners only.
    pub fn publish_relayed(&self, event: HubEvent) {
        let _ = self.sender.send(event);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<HubEvent> {
        self.sender.subscribe()
    }
}
