//! Agents' replies and internal notes. A reply is written as an outbound interaction and an
//! outbox row in one transaction; the outbox worker delivers it on the conversation's channel.

use tracing::instrument;

use crate::bus::HubEvent;
use crate::channels;
use crate::domain::*;
use crate::hub::Hub;
use crate::sanitize;
use crate::store::{self, EventKind, StoreError};
use switchboard_connectors::{Content, OutboundMessage, ThreadingHints};

/// What an agent wrote.
#[derive(Debug, Clone)]
pub struct Draft {
    pub text: String,
    pub html: Option<String>,
    pub subject: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DraftKind {
    /// Sent to the customer on the conversation's channel.
    Reply,
    /// Seen only by agents.
    Note,
}

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The draft cannot go out on this channel as it is.
    #[error(transparent)]
    Invalid(channels::SettingsError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for WriteError {
    fn from(e: sqlx::Error) -> Self {
        Self::Store(e.into())
    }
}

/// Who wrote a message: an agent, or a trigger (an automatic reply: it does not count as a
/// response, and it is marked `Auto-Submitted` so a peer's auto-responder does not answer it).
#[derive(Debug, Clone, Copy)]
pub enum Author<'a> {
    Agent(AgentId),
    Trigger(&'a str),
}

impl Hub {
    /// Writes a reply or note on a conversation; a reply is queued for delivery in the same commit.
    #[instrument(skip_all, fields(conversation = %conversation_id, ?kind))]
    pub async fn write(
        &self,
        conversation_id: ConversationId,
        author: Option<AgentId>,
        kind: DraftKind,
        draft: Draft,
    ) -> Result<Interaction, WriteError> {
        let mut tx = self.store.begin().await?;
        let author = author.map(Author::Agent);
        let (interaction, queued) = self.write_in(&mut tx, conversation_id, author, kind, draft).await?;
        tx.commit().await?;
        self.written(&interaction, queued);
        Ok(interaction)
    }

    /// What must follow a committed write: wake the outbox and the indexer, tell the consoles.
    pub(crate) fn written(&self, interaction: &Interaction, queued: bool) {
        if queued {
            self.outbox_wake.notify_one();
        }
        self.search.wake();
        self.bus.publish(HubEvent::InteractionCreated {
            interaction: Box::new(interaction.clone()),
        });
    }

    /// [`Hub::write`] inside the caller's transaction; returns the interaction and whether a
    /// delivery was queued, for [`Hub::written`] once the caller commits.
    pub(crate) async fn write_in(
        &self,
        tx: &mut store::Tx<'_>,
        conversation_id: ConversationId,
        author: Option<Author<'_>>,
        kind: DraftKind,
        draft: Draft,
    ) -> Result<(Interaction, bool), WriteError> {
        let conversation = store::conversation_in(tx, conversation_id).await?;
        let account = store::account_in(tx, conversation.channel_account_id).await?;
        if kind == DraftKind::Reply {
            channels::check_reply(&account, &draft.text).map_err(WriteError::Invalid)?;
        }
        let id = InteractionId::new();
        let at = self.clock.now();
        let threading = match (kind, conversation.channel) {
            (DraftKind::Reply, ChannelKind::Email) => email_threading(tx, &account, &conversation, id).await?,
            _ => ThreadingHints {
                thread_key: conversation.thread_key.clone(),
                ..Default::default()
            },
        };
        let html = draft.html.as_deref().map(sanitize::clean_html);
        let subject = draft
            .subject
            .clone()
            .or_else(|| conversation.subject.as_ref().map(|s| reply_subject(s)));
        let (agent, details) = match author {
            Some(Author::Agent(agent)) => (Some(agent), serde_json::json!({})),
            Some(Author::Trigger(name)) => (None, serde_json::json!({"automated": true, "trigger": name})),
            None => (None, serde_json::json!({})),
        };
        let automated = matches!(author, Some(Author::Trigger(_)));
        let new = store::NewInteraction {
            id,
            channel_account_id: account.id,
            channel: conversation.channel,
            external_id: format!("sb:{id}"),
            conversation_id,
            contact_id: conversation.contact_id,
            handle_id: Some(conversation.handle_id),
            direction: match kind {
                DraftKind::Reply => Direction::Outbound,
                DraftKind::Note => Direction::Note,
            },
            author_agent_id: agent,
            occurred_at: at,
            subject: subject.clone(),
            text: Some(draft.text.clone()),
            html: html.clone(),
            details,
            attachments: vec![],
            message_id: threading.message_id.clone(),
            awaits_reply: false,
        };
        if kind == DraftKind::Reply && !automated {
            store::record_event(
                tx,
                EventKind::AgentReplied,
                Some(conversation_id),
                Some(conversation.contact_id),
                agent,
                None,
                at,
                serde_json::json!({}),
            )
            .await?;
        }
        let seq = store::next_seq(tx, 1).await?;
        let interaction = store::insert_interaction(tx, &new, seq)
            .await?
            .ok_or_else(|| StoreError::Conflict("interaction id collision".into()))?;
        let queued = kind == DraftKind::Reply && channels::delivers(&account);
        if queued {
            let handle = handle_value(tx, conversation.handle_id).await?;
            let message = OutboundMessage {
                id: id.0,
                channel_account_id: account.id.0,
                channel: conversation.channel,
                conversation_id: conversation_id.0,
                to: handle,
                content: Content {
                    subject,
                    text: Some(draft.text),
                    html,
                },
                threading,
                created_at: at,
                automated,
            };
            store::enqueue_outbox(tx, &message).await?;
        }
        Ok((interaction, queued))
    }
}

async fn handle_value(tx: &mut store::Tx<'_>, id: HandleId) -> Result<String, StoreError> {
    let (kind, value): (String, String) = sqlx::query_as("SELECT kind, value FROM handles WHERE id = $1")
        .bind(id.to_string())
        .fetch_optional(&mut **tx)
        .await?
        .ok_or(StoreError::NotFound("handle"))?;
    Ok(format!("{kind}:{value}"))
}

/// `Re: subject`, without stacking prefixes.
fn reply_subject(subject: &str) -> String {
    let trimmed = subject.trim();
    if trimmed
        .get(..3)
        .is_some_and(|prefix| prefix.eq_ignore_ascii_case("re:"))
    {
        trimmed.to_owned()
    } else {
        format!("Re: {trimmed}")
    }
}

/// How many earlier Message-IDs a reply's References carries (the first and the latest ones).
const MAX_REFERENCES: usize = 20;

/// The headers that thread an email reply: our own Message-ID, In-Reply-To the customer's
/// latest mail, and References to the conversation's messages (RFC 5322 §3.6.4).
async fn email_threading(
    tx: &mut store::Tx<'_>,
    account: &ChannelAccount,
    conversation: &Conversation,
    id: InteractionId,
) -> Result<ThreadingHints, WriteError> {
    let settings = crate::email::EmailSettings::of(account).map_err(WriteError::Invalid)?;
    let earlier = store::message_ids_in(tx, conversation.id).await?;
    let in_reply_to = earlier
        .iter()
        .rev()
        .find(|(direction, _)| *direction == Direction::Inbound)
        .map(|(_, m)| m.clone());
    let mut references: Vec<String> = earlier.into_iter().map(|(_, m)| m).collect();
    if references.len() > MAX_REFERENCES {
        // Keep the thread's root, drop the middle (RFC 5322 §3.6.4 allows trimming).
        let tail = references.split_off(references.len() - (MAX_REFERENCES - 1));
        references.truncate(1);
        references.extend(tail);
    }
    Ok(ThreadingHints {
        message_id: Some(switchboard_connectors::email::message_id_for(id.0, &settings.address)),
        in_reply_to,
        references,
        thread_key: None,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn reply_subjects_do_not_stack_prefixes() {
        assert_eq!(super::reply_subject("Factura"), "Re: Factura");
        assert_eq!(super::reply_subject("RE: Factura"), "RE: Factura");
        assert_eq!(super::reply_subject("Ñoño"), "Re: Ñoño");
    }
}
