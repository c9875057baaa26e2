//! Routes the bus's chat events to visitor sockets by the visitor's handle (messages) and
//! conversation (agents typing), so a visitor's socket wakes only for its own chat.
//!
//! A node may hold tens of thousands of idle visitor sockets. Subscribed to the bus each, every
//! event would wake and be cloned for all of them; one router task reads the bus instead and
//! hands each event to the few sockets it is for, through a small bounded queue per socket. A
//! socket that lets its queue fill is dropped from the routes and told so: it tells the visitor
//! to resync and is routed again, as a lagging bus receiver would.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{Notify, mpsc, watch};

use crate::bus::{EventBus, HubEvent};
use crate::domain::*;

/// Events queued for one visitor socket before it counts as stuck.
const QUEUE: usize = 64;

/// Where one socket's events go, and how it learns it was dropped.
#[derive(Clone)]
struct Route {
    id: u64,
    sender: mpsc::Sender<HubEvent>,
    dropped: Arc<Notify>,
}

type Routes<K> = HashMap<K, Vec<Route>>;

/// What a visitor socket receives.
pub enum Routed {
    Event(HubEvent),
    /// The socket fell behind and missed events; it is routed again already.
    Resync,
}

#[derive(Default)]
pub struct VisitorRoutes {
    next: AtomicU64,
    by_handle: Mutex<Routes<HandleId>>,
    by_conversation: Mutex<Routes<ConversationId>>,
}

/// One visitor socket's place in the routes; leaving them when dropped.
pub struct Subscription {
    routes: Arc<VisitorRoutes>,
    id: u64,
    sender: mpsc::Sender<HubEvent>,
    events: mpsc::Receiver<HubEvent>,
    dropped: Arc<Notify>,
    handle: Option<HandleId>,
    conversation: Option<ConversationId>,
}

impl VisitorRoutes {
    /// A new subscription, routed nothing until [`Subscription::follow`] names its chat.
    pub fn subscribe(self: &Arc<Self>) -> Subscription {
        let (sender, events) = mpsc::channel(QUEUE);
        Subscription {
            routes: self.clone(),
            id: self.next.fetch_add(1, Ordering::Relaxed),
            sender,
            events,
            dropped: Arc::new(Notify::new()),
            handle: None,
            conversation: None,
        }
    }

    /// Reads the bus until `shutdown` changes, handing chat events to their sockets.
    pub async fn run(self: Arc<Self>, bus: EventBus, mut shutdown: watch::Receiver<bool>) {
        let mut events = bus.subscribe();
        loop {
            let event = tokio::select! {
                event = events.recv() => event,
                _ = shutdown.changed() => return,
            };
            match event {
                Ok(event @ HubEvent::InteractionCreated { .. }) => {
                    let HubEvent::InteractionCreated { interaction } = &event else {
                        unreachable!()
                    };
                    if interaction.channel == ChannelKind::Chat
                        && let Some(handle) = interaction.handle_id
                    {
                        deliver(&self.by_handle, &handle, &event);
                    }
                }
                Ok(event @ HubEvent::AgentActivity { .. }) => {
                    let HubEvent::AgentActivity { conversation_id, .. } = &event else {
                        unreachable!()
                    };
                    deliver(&self.by_conversation, conversation_id, &event);
                }
                Ok(_) => {}
                // The router itself fell behind: every socket resyncs.
                Err(RecvError::Lagged(_)) => {
                    for route in lock(&self.by_handle).drain().flat_map(|(_, routes)| routes) {
                        route.dropped.notify_one();
                    }
                    for route in lock(&self.by_conversation).drain().flat_map(|(_, routes)| routes) {
                        route.dropped.notify_one();
                    }
                }
                Err(RecvError::Closed) => return,
            }
        }
    }

    fn remove(&self, id: u64, handle: Option<HandleId>, conversation: Option<ConversationId>) {
        if let Some(handle) = handle {
            unroute(&self.by_handle, &handle, id);
        }
        if let Some(conversation) = conversation {
            unroute(&self.by_conversation, &conversation, id);
        }
    }
}

impl Subscription {
    /// Routes the events of this chat here: messages on `handle`, typing in `conversation`.
    pub fn follow(&mut self, handle: Option<HandleId>, conversation: Option<ConversationId>) {
        if (handle, conversation) == (self.handle, self.conversation) {
            return;
        }
        self.routes.remove(self.id, self.handle, self.conversation);
        let route = Route {
            id: self.id,
            sender: self.sender.clone(),
            dropped: self.dropped.clone(),
        };
        if let Some(handle) = handle {
            lock(&self.routes.by_handle)
                .entry(handle)
                .or_default()
                .push(route.clone());
        }
        if let Some(conversation) = conversation {
            lock(&self.routes.by_conversation)
                .entry(conversation)
                .or_default()
                .push(route);
        }
        (self.handle, self.conversation) = (handle, conversation);
    }

    /// The next event for this socket; [`Routed::Resync`] when it fell behind.
    pub async fn next(&mut self) -> Routed {
        tokio::select! {
            biased;
            () = self.dropped.notified() => {
                // Whatever is still queued is older than the gap: the resync replaces it.
                while self.events.try_recv().is_ok() {}
                let (handle, conversation) = (self.handle.take(), self.conversation.take());
                self.follow(handle, conversation);
                Routed::Resync
            }
            event = self.events.recv() => match event {
                Some(event) => Routed::Event(event),
                // Unreachable while this subscription holds a sender; treat as a gap.
                None => Routed::Resync,
            },
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.routes.remove(self.id, self.handle, self.conversation);
    }
}

fn lock<K>(routes: &Mutex<Routes<K>>) -> std::sync::MutexGuard<'_, Routes<K>> {
    routes.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Hands `event` to every socket routed under `key`; a socket whose queue is full is dropped
/// from the routes and told.
fn deliver<K: std::hash::Hash + Eq>(routes: &Mutex<Routes<K>>, key: &K, event: &HubEvent) {
    let mut routes = lock(routes);
    let Some(sockets) = routes.get_mut(key) else { return };
    sockets.retain(|route| match route.sender.try_send(event.clone()) {
        Ok(()) => true,
        Err(_) => {
            route.dropped.notify_one();
            false
        }
    });
    if sockets.is_empty() {
        routes.remove(key);
    }
}

fn unroute<K: std::hash::Hash + Eq>(routes: &Mutex<Routes<K>>, key: &K, id: u64) {
    let mut routes = lock(routes);
    if let Some(sockets) = routes.get_mut(key) {
        sockets.retain(|route| route.id != id);
        if sockets.is_empty() {
            routes.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typing(conversation_id: ConversationId) -> HubEvent {
        HubEvent::AgentActivity {
            agent_id: AgentId::new(),
            agent_name: "Bea".into(),
            conversation_id,
            channel_account_id: ChannelAccountId::new(),
            activity: crate::bus::Activity::Replying,
        }
    }

    #[tokio::test]
    async fn a_socket_gets_only_its_own_chat_and_a_stuck_one_is_told_to_resync_then_routed_again() {
        let routes = Arc::new(VisitorRoutes::default());
        let (mine, other) = (ConversationId::new(), ConversationId::new());
        let mut a = routes.subscribe();
        let mut b = routes.subscribe();
        a.follow(None, Some(mine));
        b.follow(None, Some(other));

        deliver(&routes.by_conversation, &mine, &typing(mine));
        assert!(
            matches!(a.next().await, Routed::Event(HubEvent::AgentActivity { conversation_id, .. }) if conversation_id == mine)
        );
        assert!(b.events.try_recv().is_err(), "another chat's event reached b");

        // a stops reading: one event past a full queue drops it from the routes.
        for _ in 0..=QUEUE {
            deliver(&routes.by_conversation, &mine, &typing(mine));
        }
        assert!(lock(&routes.by_conversation).get(&mine).is_none());
        assert!(
            matches!(a.next().await, Routed::Resync),
            "the stuck socket is told first"
        );
        deliver(&routes.by_conversation, &mine, &typing(mine));
        assert!(matches!(a.next().await, Routed::Event(_)), "and routed again");
        assert!(a.events.try_recv().is_err(), "the backlog was discarded, not replayed");

        drop(b);
        assert!(
            lock(&routes.by_conversation).get(&other).is_none(),
            "a closed socket leaves the routes"
        );
    }
}
