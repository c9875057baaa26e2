//! The generic call-event API: a PBX or CTI system reports `ringing`, `answered` and `hangup`
//! for a call id, in any order and as often as it likes. Each event is merged into the call's
//! leg; once a hangup has been seen the call's interaction is written, and rewritten when later
//! events change what is known (a `ringing` arriving after the `hangup` moves the start back).
//! A `ringing` event pops the caller's history onto the screen of the agent at that extension.

use switchboard_connectors::voice::{CallError, CallRecord, Disposition};
use time::OffsetDateTime;

use super::{VoiceSettings, call_envelope};
use crate::bus::{HubEvent, ScreenPop};
use crate::domain::*;
use crate::hub::Hub;
use crate::ingest::IngestError;
use crate::store::{CallEvent, CallLeg, ConversationFilter, Revision, StoreError, TimelineFilter};

/// How many recent touchpoints a screen pop carries.
const POP_RECENT: i64 = 20;

#[derive(Debug, thiserror::Error)]
pub enum CallEventError {
    #[error(transparent)]
    Call(#[from] CallError),
    #[error(transparent)]
    Ingest(#[from] IngestError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What handling one event did.
#[derive(Debug, serde::Serialize)]
pub struct CallEventOutcome {
    /// This exact event had been received before; nothing changed.
    pub duplicate: bool,
    /// The call's interaction, once a hangup has been seen.
    pub interaction_id: Option<InteractionId>,
    /// Agents whose screens got a pop.
    pub popped: Vec<AgentId>,
}

pub async fn handle_call_event(
    hub: &Hub,
    account: &ChannelAccount,
    settings: &VoiceSettings,
    event: CallEvent,
) -> Result<CallEventOutcome, CallEventError> {
    let ringing = event.kind == "ringing";
    let (leg, duplicate) = hub.store.record_call_event(&event).await?;
    if duplicate {
        return Ok(CallEventOutcome {
            duplicate,
            interaction_id: leg.interaction_id,
            popped: vec![],
        });
    }
    let popped = if ringing {
        screen_pop(hub, settings, &leg).await?
    } else {
        vec![]
    };
    // Written once the call is over and its caller is known, whichever event told us last.
    let interaction_id = match (leg.ended_at, &leg.from) {
        (Some(_), Some(_)) => Some(write_call(hub, account, settings, &leg).await?),
        _ => None,
    };
    Ok(CallEventOutcome {
        duplicate,
        interaction_id,
        popped,
    })
}

/// The call as its merged leg describes it.
fn record_of(leg: &CallLeg) -> CallRecord {
    let started_at = [leg.ringing_at, leg.answered_at, leg.ended_at]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or_else(now);
    let disposition = match leg.disposition.as_deref() {
        Some("busy") => Disposition::Busy,
        Some("failed") => Disposition::Failed,
        Some("voicemail") => Disposition::Voicemail,
        Some("missed") => Disposition::Missed,
        _ if leg.answered_at.is_some() => Disposition::Answered,
        _ => Disposition::Missed,
    };
    let seconds = |from: Option<OffsetDateTime>, to: Option<OffsetDateTime>| match (from, to) {
        (Some(a), Some(b)) if b >= a => Some((b - a).whole_seconds() as u32),
        _ => None,
    };
    CallRecord {
        call_id: format!("call:{}", leg.call_id),
        from: leg.from.clone().unwrap_or_default(),
        to: leg.to.clone().or_else(|| leg.extension.clone()).unwrap_or_default(),
        caller_name: None,
        started_at,
        answered_at: leg.answered_at,
        ended_at: leg.ended_at,
        disposition,
        duration_s: seconds(Some(started_at), leg.ended_at),
        talk_s: seconds(leg.answered_at, leg.ended_at),
        recording_url: leg.recording_url.clone(),
        notes: leg.notes.clone(),
        direction: leg.direction,
        source: "api",
    }
}

/// Writes the call's interaction, or revises it with what the leg knows now.
async fn write_call(
    hub: &Hub,
    account: &ChannelAccount,
    settings: &VoiceSettings,
    leg: &CallLeg,
) -> Result<InteractionId, CallEventError> {
    let mut envelope = call_envelope(account, settings, hub.settings.contacts.default_region, record_of(leg))?;
    if leg.extension.is_some() {
        envelope.agent_extension = leg.extension.clone();
    }
    let outcome = hub.ingest(&envelope).await?;
    let id = outcome.interaction.id;
    if outcome.duplicate {
        let author_agent_id = match &envelope.agent_extension {
            Some(extension) => hub.store.agent_by_extension(extension).await?,
            None => None,
        };
        let revision = Revision {
            occurred_at: envelope.occurred_at,
            text: envelope.content.text,
            details: envelope.details,
            author_agent_id,
        };
        let revised = hub.store.revise_interaction(id, revision).await?;
        hub.search.wake();
        hub.bus.publish(HubEvent::InteractionUpdated {
            interaction: Box::new(revised),
        });
    }
    if leg.interaction_id.is_none() {
        hub.store.link_call(account.id, &leg.call_id, id).await?;
    }
    Ok(id)
}

/// Pushes the caller's contact, open conversations and latest touchpoints to the agent at the
/// called extension. An unknown number gets a "new caller" pop.
async fn screen_pop(hub: &Hub, settings: &VoiceSettings, leg: &CallLeg) -> Result<Vec<AgentId>, StoreError> {
    let extension = leg
        .extension
        .clone()
        .or_else(|| leg.to.clone().filter(|to| settings.extensions().is_extension(to)));
    let Some(agent) = (match extension {
        Some(ext) => hub.store.agent_by_extension(&ext).await?,
        None => None,
    }) else {
        return Ok(vec![]);
    };
    let from = leg.from.clone().unwrap_or_default();
    let pop = pop_for(hub, agent, &leg.call_id, &from).await?;
    hub.bus.publish(HubEvent::ScreenPop {
        agent_id: agent,
        pop: Box::new(pop),
    });
    Ok(vec![agent])
}

/// What `agent`'s screen shows for a call from `from`: the caller's contact, open conversations
/// and latest touchpoints, as far as the agent may see them. Also built by the other nodes when
/// the pop is relayed to them, for the agent's consoles there.
pub(crate) async fn pop_for(hub: &Hub, agent: AgentId, call_id: &str, from: &str) -> Result<ScreenPop, StoreError> {
    let number = PhoneNumber::parse(from, hub.settings.contacts.default_region).ok();
    let contact_id = match &number {
        Some(n) => hub.store.contact_by_handle(&Handle::Phone(n.clone())).await?,
        None => None,
    };
    // The pop shows what the agent may see: every inbox for supervisors, their own for agents.
    let accounts = match hub.store.agent(agent).await?.role {
        Role::Agent => Some(hub.store.agent_inbox_ids(agent).await?),
        _ => None,
    };
    Ok(match contact_id {
        Some(id) => {
            let contact = hub.store.contact(id).await?;
            let interactions = hub
                .store
                .timeline(
                    id,
                    &TimelineFilter {
                        accounts: accounts.clone(),
                        ..Default::default()
                    },
                    None,
                    POP_RECENT,
                )
                .await?;
            let mut open = hub
                .store
                .conversations(&ConversationFilter {
                    contact_id: Some(id),
                    limit: 50,
                    accounts,
                    ..Default::default()
                })
                .await?;
            open.retain(|c| c.status != ConversationStatus::Resolved);
            ScreenPop {
                call_id: call_id.to_owned(),
                number: number.map_or_else(|| from.to_owned(), |n| n.to_string()),
                contact: Some(contact),
                open_conversations: open,
                interactions,
            }
        }
        None => ScreenPop {
            call_id: call_id.to_owned(),
            number: number.map_or_else(|| from.to_owned(), |n| n.to_string()),
            contact: None,
            open_conversations: vec![],
            interactions: vec![],
        },
    })
}
