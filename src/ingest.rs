//! The one ingest path every channel uses: envelope -> contact -> conversation -> interaction
//! and connector cursor, in one transaction; then the event. A repeat of an external id returns
//! the stored interaction and says it was a duplicate.

use time::Duration;
use tracing::instrument;

use crate::bus::HubEvent;
use crate::domain::*;
use crate::hub::Hub;
use crate::sanitize;
use crate::store::{self, StoreError, Tx};
use switchboard_connectors::InboundEnvelope;

/// Longest external id accepted, in bytes.
pub const MAX_EXTERNAL_ID: usize = 512;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("channel account not found")]
    UnknownAccount,
    #[error("channel account is a {account} account, not {envelope}")]
    ChannelMismatch {
        account: ChannelKind,
        envelope: ChannelKind,
    },
    #[error("external_id must be 1 to {MAX_EXTERNAL_ID} bytes")]
    ExternalId,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What the ingest path did with an envelope.
#[derive(Debug, Clone)]
pub struct IngestOutcome {
    pub interaction: Interaction,
    /// The external id was already stored; nothing was written.
    pub duplicate: bool,
    pub conversation_opened: bool,
}

/// Lost a race with a concurrent writer for the same handle or external id: run again.
struct RaceLost;

impl Hub {
    /// Stores one touchpoint. When this returns `Ok`, the touchpoint is durable.
    #[instrument(skip_all, fields(account = %envelope.channel_account_id, external_id = %envelope.external_id))]
    pub async fn ingest(&self, envelope: &InboundEnvelope) -> Result<IngestOutcome, IngestError> {
        if envelope.external_id.is_empty() || envelope.external_id.len() > MAX_EXTERNAL_ID {
            return Err(IngestError::ExternalId);
        }
        let account_id = ChannelAccountId(envelope.channel_account_id);
        for _ in 0..3 {
            if let Some(existing) = self
                .store
                .interaction_by_external_id(account_id, &envelope.external_id)
                .await?
            {
                return Ok(IngestOutcome {
                    interaction: existing,
                    duplicate: true,
                    conversation_opened: false,
                });
            }
            match self.try_ingest(envelope).await? {
                Ok(outcome) => {
                    metrics::counter!("switchboard_ingested_total", "channel" => envelope.channel.as_str())
                        .increment(1);
                    self.search.wake();
                    self.bus.publish(HubEvent::InteractionCreated {
                        interaction: Box::new(outcome.interaction.clone()),
                    });
                    return Ok(outcome);
                }
                Err(RaceLost) => continue,
            }
        }
        // Three lost races in a row means the competing write committed: it is a duplicate.
        let existing = self
            .store
            .interaction_by_external_id(account_id, &envelope.external_id)
            .await?
            .ok_or_else(|| StoreError::Conflict("concurrent writers kept winning the same handle".into()))?;
        Ok(IngestOutcome {
            interaction: existing,
            duplicate: true,
            conversation_opened: false,
        })
    }

    async fn try_ingest(&self, env: &InboundEnvelope) -> Result<Result<IngestOutcome, RaceLost>, IngestError> {
        let mut tx = self.store.begin().await?;
        let account = match store::account_in(&mut tx, ChannelAccountId(env.channel_account_id)).await {
            Err(StoreError::NotFound(_)) => return Err(IngestError::UnknownAccount),
            other => other?,
        };
        if account.kind != env.channel {
            return Err(IngestError::ChannelMismatch {
                account: account.kind,
                envelope: env.channel,
            });
        }
        let Some((handle_id, contact_id)) = resolve_contact(&mut tx, env).await? else {
            return Ok(Err(RaceLost));
        };
        let placement = store::place(
            &mut tx,
            store::PlacementRequest {
                contact: contact_id,
                handle: handle_id,
                account: &account,
                thread_key: env.threading.thread_key.as_deref(),
                subject: env.content.subject.as_deref(),
                direction: env.direction,
                occurred_at: env.occurred_at,
                reopen_window: Duration::hours(self.settings.conversations.reopen_window_hours as i64),
            },
        )
        .await?;
        let html = env.content.html.as_deref().map(sanitize::clean_html);
        let text = env
            .content
            .text
            .clone()
            .or_else(|| env.content.html.as_deref().map(sanitize::html_to_text));
        let new = store::NewInteraction {
            id: InteractionId::new(),
            channel_account_id: account.id,
            channel: env.channel,
            external_id: env.external_id.clone(),
            conversation_id: placement.id(),
            contact_id,
            handle_id: Some(handle_id),
            direction: env.direction,
            author_agent_id: None,
            occurred_at: env.occurred_at,
            subject: env.content.subject.clone(),
            text,
            html,
            details: env.details.clone(),
            attachments: env.attachments.clone(),
            message_id: env.threading.message_id.clone(),
        };
        store::touch(&mut tx, placement.id(), env.occurred_at).await?;
        let seq = store::next_seq(&mut tx, 1).await?;
        let Some(interaction) = store::insert_interaction(&mut tx, &new, seq).await? else {
            return Ok(Err(RaceLost));
        };
        if let Some(cursor) = &env.cursor {
            store::save_cursor(&mut tx, account.id, cursor).await?;
        }
        tx.commit().await.map_err(StoreError::from)?;
        Ok(Ok(IngestOutcome {
            interaction,
            duplicate: false,
            conversation_opened: matches!(placement, store::Placement::Opened(_)),
        }))
    }
}

/// The contact behind the envelope's handle, created on first sight. `None` when a concurrent
/// writer claimed the same new handle first.
async fn resolve_contact(tx: &mut Tx, env: &InboundEnvelope) -> Result<Option<(HandleId, ContactId)>, StoreError> {
    if let Some(found) = store::find_handle(tx, &env.contact).await? {
        if let Some(name) = &env.contact_name {
            store::name_if_unnamed(tx, found.1, name).await?;
        }
        return Ok(Some(found));
    }
    let contact = store::insert_contact(tx, env.contact_name.as_deref()).await?;
    Ok(store::insert_handle(tx, contact, &env.contact)
        .await?
        .map(|handle| (handle, contact)))
}
