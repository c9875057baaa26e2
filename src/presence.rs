//! Agent presence: an agent with a console open is online (unless they chose away), and goes
//! offline when their last console closes. Counts the agent sockets open on this node.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::bus::HubEvent;
use crate::domain::*;
use crate::hub::Hub;
use crate::store::StoreError;

#[derive(Default)]
pub struct Desks {
    open: Mutex<HashMap<AgentId, usize>>,
}

impl Desks {
    /// An agent socket opened: an offline agent comes online.
    pub async fn arrived(&self, hub: &Hub, agent: AgentId) {
        *self.open.lock().expect("desk count lock").entry(agent).or_default() += 1;
        match hub.store.agent(agent).await {
            Ok(found) if found.presence == Presence::Offline => {
                log_failure(agent, set(hub, agent, Presence::Online).await)
            }
            Ok(_) => {}
            Err(e) => log_failure(agent, Err(e)),
        }
    }

    /// An agent socket closed: the agent's last one takes them offline.
    pub async fn left(&self, hub: &Hub, agent: AgentId) {
        let last = {
            let mut open = self.open.lock().expect("desk count lock");
            let count = open.entry(agent).or_default();
            *count = count.saturating_sub(1);
            let last = *count == 0;
            if last {
                open.remove(&agent);
            }
            last
        };
        if last {
            log_failure(agent, set(hub, agent, Presence::Offline).await);
        }
    }
}

/// Stores an agent's presence and tells every console.
pub async fn set(hub: &Hub, agent: AgentId, presence: Presence) -> Result<Agent, StoreError> {
    let agent = hub.store.set_presence(agent, presence).await?;
    hub.bus.publish(HubEvent::PresenceChanged {
        agent: Box::new(agent.clone()),
    });
    Ok(agent)
}

fn log_failure(agent: AgentId, result: Result<Agent, StoreError>) {
    if let Err(e) = result {
        tracing::warn!(%agent, error = %e, "presence not updated");
    }
}
