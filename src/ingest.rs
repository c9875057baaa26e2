//! The one ingest path every channel uses: envelope -> contact -> conversation -> interaction
//! and connector cursor, in one transaction; then the event. A repeat of an external id returns
//! the stored interaction and says it was a duplicate.
//!
//! **Group commit.** All writes of a node go through one [`IngestWriter`] task. It takes every
//! envelope waiting in its queue (up to [`MAX_BATCH`]), writes them in one transaction and
//! commits once: one disk sync acknowledges the whole batch. A failing envelope costs only
//! itself: the batch is first written without savepoints, and if an envelope fails the attempt
//! is rolled back and the batch written again with a savepoint per envelope. Nobody waits for a
//! batch to fill: the batch is whatever arrived while the previous commit was syncing, so under
//! light load each envelope is committed alone and at once, and under heavy load the sync cost
//! is shared. Of several envelopes submitted together, those already stored are answered from
//! one read per account before the queue; an envelope submitted alone is looked up by the writer.
//! While envelopes keep waiting and no other writer asks for the turn to write, the writer keeps
//! the turn from one batch to the next.

use std::collections::{HashMap, HashSet};

use time::Duration;
use tokio::sync::{mpsc, oneshot};
use tracing::instrument;

use crate::bus::HubEvent;
use crate::domain::*;
use crate::hub::Hub;
use crate::sanitize;
use crate::store::{self, Db, Store, StoreError, WriteTx as _};
use switchboard_connectors::InboundEnvelope;

/// Longest external id accepted, in bytes.
pub const MAX_EXTERNAL_ID: usize = 512;
/// Most envelopes committed in one transaction. On this machine batches of 4,096 instead of 512
/// made a bulk import 35 % faster (pages shared by a batch are written once); 2,048 keeps most
/// of that and holds the turn to write for at most about half a second.
pub const MAX_BATCH: usize = 2048;
/// Envelopes waiting for the writer before senders wait too (backpressure).
const QUEUE_DEPTH: usize = 8192;

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
    #[error("the ingest writer has stopped")]
    Stopped,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for IngestError {
    fn from(e: sqlx::Error) -> Self {
        Self::Store(e.into())
    }
}

/// What the ingest path did with an envelope.
#[derive(Debug, Clone)]
pub struct IngestOutcome {
    pub interaction: Interaction,
    /// The external id was already stored; nothing was written.
    pub duplicate: bool,
    pub conversation_opened: bool,
}

impl IngestOutcome {
    /// The answer for an external id stored before: nothing written.
    fn duplicate(interaction: Interaction) -> Self {
        Self {
            interaction,
            duplicate: true,
            conversation_opened: false,
        }
    }
}

/// How the envelopes of a batch are kept apart inside its transaction.
#[derive(Clone, Copy)]
enum Isolation {
    /// No savepoints; any failure rolls the attempt back.
    Optimistic,
    /// A savepoint per envelope: a failure costs only that envelope.
    Savepoints,
}

impl Hub {
    /// Stores one touchpoint. When this returns `Ok`, the touchpoint is durable.
    #[instrument(skip_all, fields(account = %envelope.channel_account_id, external_id = %envelope.external_id))]
    pub async fn ingest(&self, envelope: &InboundEnvelope) -> Result<IngestOutcome, IngestError> {
        let mut outcomes = self.ingest_many(vec![envelope.clone()]).await;
        outcomes.pop().unwrap_or(Err(IngestError::Stopped))
    }

    /// Stores several touchpoints (a file import, say); each gets its own outcome, in order.
    pub async fn ingest_many(&self, envelopes: Vec<InboundEnvelope>) -> Vec<Result<IngestOutcome, IngestError>> {
        let outcomes = self.ingest_queue.ingest_many(&self.store, envelopes).await;
        for stored in outcomes.iter().flatten().filter(|o| !o.duplicate) {
            self.bus.publish(HubEvent::InteractionCreated {
                interaction: Box::new(stored.interaction.clone()),
            });
        }
        self.search.wake();
        outcomes
    }
}

/// The sending side of the writer's queue; cheap to clone.
#[derive(Clone)]
pub struct IngestQueue {
    sender: mpsc::Sender<Job>,
}

struct Job {
    envelope: InboundEnvelope,
    body: Body,
    /// The pre-check looked for a stored touchpoint with this envelope's external id, and found
    /// none.
    external_checked: bool,
    /// The pre-check looked for a stored mail with this envelope's Message-ID, and found none.
    mail_checked: bool,
    reply: oneshot::Sender<Result<IngestOutcome, IngestError>>,
}

/// Which duplicate checks the writer runs for an envelope; the insert itself refuses a
/// repeated external id, so these run only where the pre-check could not see.
#[derive(Clone, Copy)]
struct Checks {
    external_id: bool,
    message_id: bool,
}

impl Checks {
    /// For a twin inside the batch or a retry, everything; otherwise what the pre-check missed.
    fn for_job(job: &Job, again: bool) -> Self {
        Self {
            external_id: again || !job.external_checked,
            message_id: again || !job.mail_checked,
        }
    }
}

/// An envelope's text and sanitised HTML, prepared by the sender so the writer's single thread
/// spends its time on writes (HTML cleaning was a twentieth of its time).
struct Body {
    text: Option<String>,
    html: Option<String>,
}

impl Body {
    fn of(envelope: &InboundEnvelope) -> Self {
        let content = &envelope.content;
        Self {
            text: content
                .text
                .clone()
                .or_else(|| content.html.as_deref().map(sanitize::html_to_text)),
            html: content.html.as_deref().map(sanitize::clean_html),
        }
    }
}

/// Touchpoints submitted to the writer, whose outcomes are still to come.
pub struct Pending(Vec<Submitted>);

impl Pending {
    /// Waits for every outcome, in the order the touchpoints were submitted. When this returns,
    /// each stored touchpoint is durable.
    pub async fn outcomes(self) -> Vec<Result<IngestOutcome, IngestError>> {
        let mut outcomes = Vec::with_capacity(self.0.len());
        for waiting in self.0 {
            outcomes.push(match waiting {
                Submitted::Done(outcome) => *outcome,
                Submitted::Queued(channel, receiver) => {
                    let outcome = receiver.await.unwrap_or(Err(IngestError::Stopped));
                    if outcome.as_ref().is_ok_and(|o| !o.duplicate) {
                        metrics::counter!("switchboard_ingested_total", "channel" => channel.as_str()).increment(1);
                    }
                    outcome
                }
            });
        }
        outcomes
    }
}

enum Submitted {
    /// Answered without the writer: invalid, or already stored.
    Done(Box<Result<IngestOutcome, IngestError>>),
    Queued(ChannelKind, oneshot::Receiver<Result<IngestOutcome, IngestError>>),
}

impl IngestQueue {
    /// Stores touchpoints through the writer, without publishing events: for processes that
    /// have no event bus (a command-line import). Outcomes come back in order.
    pub async fn ingest_many(
        &self,
        store: &Store,
        envelopes: Vec<InboundEnvelope>,
    ) -> Vec<Result<IngestOutcome, IngestError>> {
        self.submit(store, envelopes).await.outcomes().await
    }

    /// Queues touchpoints for the writer and returns without waiting for them to be written,
    /// so that a bulk import prepares its next part while the writer writes this one. Parts
    /// submitted one after the other are written in that order.
    ///
    /// Several touchpoints (an import, a mailbox's new mail) are first looked up on the read
    /// pool, so a file imported again costs the writer nothing. A touchpoint arriving alone (a
    /// webhook, a chat message) is looked up by the writer instead, inside its transaction: one
    /// indexed read on its own connection, where the pool's read cost a webhook a query and a
    /// connection check on another thread (a seventh of a webhook's CPU, perf).
    pub async fn submit(&self, store: &Store, envelopes: Vec<InboundEnvelope>) -> Pending {
        // Envelopes enter the queue in their own order, which threading depends on: a reply
        // must not overtake its parent.
        let stored = match envelopes.len() {
            0 | 1 => Prechecked::default(),
            _ => Prechecked::of(store, &envelopes).await,
        };
        let mut pending = Vec::with_capacity(envelopes.len());
        for envelope in envelopes {
            pending.push(
                if envelope.external_id.is_empty() || envelope.external_id.len() > MAX_EXTERNAL_ID {
                    Submitted::Done(Box::new(Err(IngestError::ExternalId)))
                } else if let Some(existing) = stored.existing(&envelope) {
                    Submitted::Done(Box::new(Ok(IngestOutcome::duplicate(existing.clone()))))
                } else {
                    let checked = (stored.external_checked(&envelope), stored.mail_checked(&envelope));
                    self.enqueue(envelope, checked).await
                },
            );
        }
        Pending(pending)
    }

    /// `checked`: whether the pre-check looked the envelope up by external id, and by Message-ID.
    async fn enqueue(&self, envelope: InboundEnvelope, (external_checked, mail_checked): (bool, bool)) -> Submitted {
        let channel = envelope.channel;
        let (reply, receiver) = oneshot::channel();
        let job = Job {
            body: Body::of(&envelope),
            envelope,
            external_checked,
            mail_checked,
            reply,
        };
        if self.sender.send(job).await.is_err() {
            return Submitted::Done(Box::new(Err(IngestError::Stopped)));
        }
        Submitted::Queued(channel, receiver)
    }
}

/// What the pre-check found for a batch of envelopes, with one read per account on the read
/// pool, so a retry storm never queues for the writer: the stored interactions under their
/// external ids (a provider's retry, a file imported again), and for mail, the inbox's mail
/// under their Message-IDs (our own mail coming back). If a lookup fails the envelopes go to
/// the writer unchecked, and the writer checks: its insert refuses a duplicate.
#[derive(Default)]
struct Prechecked {
    by_external_id: HashMap<(ChannelAccountId, String), Interaction>,
    by_message_id: HashMap<(ChannelAccountId, String), Interaction>,
    /// Accounts whose external ids were looked up.
    external_checked: HashSet<ChannelAccountId>,
    /// Accounts whose Message-IDs were looked up.
    mail_checked: HashSet<ChannelAccountId>,
}

impl Prechecked {
    async fn of(store: &Store, envelopes: &[InboundEnvelope]) -> Self {
        let mut by_account: HashMap<ChannelAccountId, (Vec<&str>, Vec<&str>)> = HashMap::new();
        for envelope in envelopes {
            let (external_ids, message_ids) = by_account
                .entry(ChannelAccountId(envelope.channel_account_id))
                .or_default();
            external_ids.push(&envelope.external_id);
            if let Some(message_id) = envelope.threading.message_id.as_deref()
                && envelope.channel == ChannelKind::Email
            {
                message_ids.push(message_id);
            }
        }
        let mut found = Self::default();
        for (account, (external_ids, message_ids)) in by_account {
            match store.interactions_by_external_ids(account, &external_ids).await {
                Ok(stored) => {
                    found
                        .by_external_id
                        .extend(stored.into_iter().map(|(id, i)| ((account, id), i)));
                    found.external_checked.insert(account);
                }
                Err(error) => tracing::warn!(%account, %error, "duplicate pre-check failed; the writer checks instead"),
            }
            if message_ids.is_empty() {
                continue;
            }
            match store.mails_by_message_ids(account, &message_ids).await {
                Ok(stored) => {
                    found
                        .by_message_id
                        .extend(stored.into_iter().map(|(id, i)| ((account, id), i)));
                    found.mail_checked.insert(account);
                }
                Err(error) => {
                    tracing::warn!(%account, %error, "message-id pre-check failed; the writer checks instead")
                }
            }
        }
        found
    }

    /// The interaction already stored for this envelope, if any.
    fn existing(&self, envelope: &InboundEnvelope) -> Option<&Interaction> {
        let account = ChannelAccountId(envelope.channel_account_id);
        self.by_external_id
            .get(&(account, envelope.external_id.clone()))
            .or_else(|| {
                let message_id = envelope.threading.message_id.clone()?;
                self.by_message_id
                    .get(&(account, message_id))
                    .filter(|_| envelope.channel == ChannelKind::Email)
            })
    }

    /// Whether the envelope's external id was looked up (and not found).
    fn external_checked(&self, envelope: &InboundEnvelope) -> bool {
        self.external_checked
            .contains(&ChannelAccountId(envelope.channel_account_id))
    }

    /// Whether the envelope's Message-ID was looked up (and not found).
    fn mail_checked(&self, envelope: &InboundEnvelope) -> bool {
        envelope.channel == ChannelKind::Email
            && self
                .mail_checked
                .contains(&ChannelAccountId(envelope.channel_account_id))
    }
}

/// The task that owns every ingest write of this node.
pub struct IngestWriter {
    store: Store,
    reopen_window: Duration,
    receiver: mpsc::Receiver<Job>,
}

impl IngestWriter {
    pub fn new(store: Store, reopen_window: Duration) -> (Self, IngestQueue) {
        let (sender, receiver) = mpsc::channel(QUEUE_DEPTH);
        (
            Self {
                store,
                reopen_window,
                receiver,
            },
            IngestQueue { sender },
        )
    }

    /// Writes batches until every queue handle is dropped. On SQLite the writer drives a
    /// connection of its own on a thread of its own (see `store::Lite`); elsewhere it writes
    /// through the store's pool.
    pub async fn run(self) {
        if self.store.sqlite_file().is_some() {
            match store::Lite::open(&self.store) {
                Ok(lite) => return self.run_on_own_thread(lite).await,
                Err(error) => {
                    tracing::error!(%error, "cannot open the ingest writer's own connection; writing through the pool")
                }
            }
        }
        let mut store = self.store.clone();
        self.write_until_closed(&mut store).await;
    }

    async fn run_on_own_thread(self, mut lite: store::Lite) {
        let (done, finished) = oneshot::channel::<()>();
        let runtime = tokio::runtime::Handle::current();
        let spawned = std::thread::Builder::new().name("ingest-writer".into()).spawn(move || {
            // The statements run on this thread; only the queue and the turn to write wait.
            runtime.block_on(self.write_until_closed(&mut lite));
            let _ = done.send(());
        });
        match spawned {
            Ok(_) => {
                let _ = finished.await;
            }
            Err(error) => tracing::error!(%error, "cannot start the ingest writer's thread"),
        }
    }

    async fn write_until_closed(mut self, conn: &mut impl store::Writes) {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        while self.receiver.recv_many(&mut batch, MAX_BATCH).await > 0 {
            let outcomes = self.write_batch(conn, &batch).await;
            metrics::histogram!("switchboard_ingest_batch_size").record(batch.len() as f64);
            for (job, outcome) in batch.drain(..).zip(outcomes) {
                let _ = job.reply.send(outcome);
            }
        }
    }

    /// Writes a batch in one transaction and commits once. If the commit fails, every envelope
    /// of the batch gets the error: none of them was acknowledged.
    ///
    /// The batch is first written without a savepoint per envelope (two statements fewer each,
    /// a quarter of the writer's statements): nearly every batch succeeds whole. If an envelope
    /// fails or loses a race with another node, that attempt is rolled back and the batch is
    /// written again with savepoints, where a failure costs only its own envelope.
    async fn write_batch(
        &self,
        conn: &mut impl store::Writes,
        batch: &[Job],
    ) -> Vec<Result<IngestOutcome, IngestError>> {
        match self.write_batch_in(conn, batch, Isolation::Optimistic).await {
            Some(outcomes) => outcomes,
            None => self
                .write_batch_in(conn, batch, Isolation::Savepoints)
                .await
                .unwrap_or_default(),
        }
    }

    /// `None` only when an optimistic attempt met a failure (and was rolled back).
    async fn write_batch_in(
        &self,
        conn: &mut impl store::Writes,
        batch: &[Job],
        isolation: Isolation,
    ) -> Option<Vec<Result<IngestOutcome, IngestError>>> {
        let failed = |e: &StoreError| Some(batch.iter().map(|_| Err(IngestError::Store(clone_error(e)))).collect());
        let mut tx = match conn.begin().await {
            Ok(tx) => tx,
            Err(e) => return failed(&e),
        };
        let mut outcomes = Vec::with_capacity(batch.len());
        let mut accounts = HashMap::new();
        let mut seen = HashSet::new();
        // Asked once per batch: with no trigger or segment, nothing is queued for automation.
        let listening = match store::automation_listening_in(&mut tx).await {
            Ok(listening) => listening,
            Err(e) => return failed(&e),
        };
        for job in batch {
            let env = &job.envelope;
            // A repeat inside this batch is the only duplicate the queue's check cannot have seen.
            let twin = !seen.insert((env.channel_account_id, env.external_id.as_str()));
            let outcome = match isolation {
                Isolation::Savepoints => self.write_one(&mut tx, job, &mut accounts, twin, listening).await,
                Isolation::Optimistic => {
                    let checks = Checks::for_job(job, twin);
                    match place_one(&mut tx, job, self.reopen_window, &mut accounts, checks, listening).await {
                        Ok(Placed::Stored(outcome)) => Ok(outcome),
                        Ok(Placed::Duplicate(existing)) => Ok(IngestOutcome::duplicate(existing)),
                        // Refused before anything was written: the transaction is intact.
                        Err(e @ (IngestError::UnknownAccount | IngestError::ChannelMismatch { .. })) => Err(e),
                        Ok(Placed::RaceLost) | Err(_) => {
                            if let Err(e) = tx.rollback().await {
                                tracing::warn!(error = %e, "rolling back an ingest attempt failed");
                            }
                            return None;
                        }
                    }
                }
            };
            outcomes.push(outcome);
        }
        // More envelopes waiting: the next batch follows at once, and may keep the turn.
        let committed = if self.receiver.is_empty() {
            tx.commit().await
        } else {
            tx.commit_with_more_to_write().await
        };
        if let Err(e) = committed {
            tracing::error!(error = %e, size = batch.len(), "ingest batch commit failed");
            return failed(&e);
        }
        Some(outcomes)
    }

    /// One envelope inside the batch's transaction, in a savepoint of its own.
    async fn write_one(
        &self,
        tx: &mut impl Db,
        job: &Job,
        accounts: &mut HashMap<ChannelAccountId, ChannelAccount>,
        twin: bool,
        listening: bool,
    ) -> Result<IngestOutcome, IngestError> {
        for attempt in 0..3 {
            store::sql("SAVEPOINT envelope").execute(tx).await?;
            let checks = Checks::for_job(job, twin || attempt > 0);
            let placed = place_one(tx, job, self.reopen_window, accounts, checks, listening).await;
            if !matches!(placed, Ok(Placed::Stored(_))) {
                store::sql("ROLLBACK TO SAVEPOINT envelope").execute(tx).await?;
            }
            store::sql("RELEASE SAVEPOINT envelope").execute(tx).await?;
            match placed {
                Ok(Placed::Stored(outcome)) => return Ok(outcome),
                Ok(Placed::Duplicate(existing)) => return Ok(IngestOutcome::duplicate(existing)),
                // A concurrent writer (another node) took the same new handle or external id:
                // try again, it is committed by now; the next attempt checks for the duplicate.
                Ok(Placed::RaceLost) => {}
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Conflict("concurrent writers kept taking the same handle".into()).into())
    }
}

/// A store error for each job of a failed batch (sqlx errors are not `Clone`).
fn clone_error(e: &StoreError) -> StoreError {
    StoreError::Conflict(format!("the batch could not be committed: {e}"))
}

enum Placed {
    Stored(IngestOutcome),
    Duplicate(Interaction),
    RaceLost,
}

/// Writes one envelope. `accounts` caches the batch's channel accounts; the duplicate check runs
/// only when asked, since the insert itself refuses a duplicate (and the caller then retries
/// with the check, to return the stored interaction).
async fn place_one(
    tx: &mut impl Db,
    job: &Job,
    reopen_window: Duration,
    accounts: &mut HashMap<ChannelAccountId, ChannelAccount>,
    checks: Checks,
    listening: bool,
) -> Result<Placed, IngestError> {
    let env = &job.envelope;
    let account_id = ChannelAccountId(env.channel_account_id);
    let account = match accounts.get(&account_id) {
        Some(account) => account.clone(),
        None => match store::account_in(tx, account_id).await {
            Err(StoreError::NotFound(_)) => return Err(IngestError::UnknownAccount),
            other => {
                let account = other?;
                accounts.insert(account_id, account.clone());
                account
            }
        },
    };
    if account.kind != env.channel {
        return Err(IngestError::ChannelMismatch {
            account: account.kind,
            envelope: env.channel,
        });
    }
    if checks.external_id
        && let Some(existing) = store::interaction_by_external_id_in(tx, account.id, &env.external_id).await?
    {
        return Ok(Placed::Duplicate(existing));
    }
    if env.channel == ChannelKind::Email
        && checks.message_id
        && let Some(message_id) = env.threading.message_id.as_deref()
        && let Some(existing) = store::mail_by_message_id_in(tx, account.id, message_id).await?
    {
        return Ok(Placed::Duplicate(existing));
    }
    let Some((handle_id, contact_id)) = resolve_contact(tx, env).await? else {
        return Ok(Placed::RaceLost);
    };
    let references: Vec<String> = env
        .threading
        .references
        .iter()
        .chain(env.threading.in_reply_to.iter())
        .cloned()
        .collect();
    let threading = match (env.channel, env.threading.thread_key.as_deref()) {
        (_, Some(key)) => store::Threading::Key(key),
        (ChannelKind::Email, None) => store::Threading::Email {
            references: &references,
            subject: env.content.subject.as_deref(),
        },
        (_, None) => store::Threading::Latest,
    };
    let (placement, reason) = store::place(
        tx,
        store::PlacementRequest {
            contact: contact_id,
            handle: handle_id,
            account: &account,
            threading,
            subject: env.content.subject.as_deref(),
            direction: env.direction,
            occurred_at: env.occurred_at,
            reopen_window,
            needs_reply: env.needs_reply,
            automation: listening,
        },
    )
    .await?;
    let mut details = env.details.clone();
    if env.channel == ChannelKind::Email
        && let Some(object) = details.as_object_mut()
    {
        // Every threading decision says why, so a wrong one can be understood and fixed.
        object.insert("threading".into(), serde_json::json!({"reason": reason}));
    }
    let author_agent_id = match &env.agent_extension {
        Some(extension) => store::agent_by_extension_in(tx, extension).await?,
        None => None,
    };
    let new = store::NewInteraction {
        id: InteractionId::new(),
        channel_account_id: account.id,
        channel: env.channel,
        external_id: env.external_id.clone(),
        conversation_id: placement.id(),
        contact_id,
        handle_id: Some(handle_id),
        direction: env.direction,
        author_agent_id,
        occurred_at: env.occurred_at,
        subject: env.content.subject.clone(),
        text: job.body.text.clone(),
        html: job.body.html.clone(),
        details,
        attachments: env.attachments.clone(),
        message_id: env.threading.message_id.clone(),
        awaits_reply: env.needs_reply,
    };
    let seq = store::next_seq(tx, 1).await?;
    let Some(interaction) = store::insert_interaction(tx, &new, seq).await? else {
        return Ok(Placed::RaceLost);
    };
    if listening {
        store::queue_for_automation(tx, &interaction, false).await?;
    }
    for sha256 in env.attachments.iter().filter_map(|a| a.sha256.as_deref()) {
        store::reference_blob(tx, sha256, account.id).await?;
    }
    if let Some(cursor) = &env.cursor {
        store::save_cursor(tx, account.id, cursor).await?;
    }
    Ok(Placed::Stored(IngestOutcome {
        interaction,
        duplicate: false,
        conversation_opened: matches!(placement, store::Placement::Opened(_)),
    }))
}

/// The contact behind the envelope's handle, created on first sight. `None` when a concurrent
/// writer claimed the same new handle first.
async fn resolve_contact(tx: &mut impl Db, env: &InboundEnvelope) -> Result<Option<(HandleId, ContactId)>, StoreError> {
    if let Some((handle, contact, named)) = store::find_handle_of_named(tx, &env.contact).await? {
        if let Some(name) = env.contact_name.as_deref().filter(|_| !named) {
            store::name_if_unnamed(tx, contact, name).await?;
        }
        return Ok(Some((handle, contact)));
    }
    let contact = store::insert_contact(tx, env.contact_name.as_deref()).await?;
    Ok(store::insert_handle(tx, contact, &env.contact)
        .await?
        .map(|handle| (handle, contact)))
}
