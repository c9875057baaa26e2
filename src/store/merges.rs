//! Merging two contacts, and undoing a merge exactly.
//!
//! A merge moves the source contact's handles, conversations and interactions to the target and
//! records their ids; the source keeps its row, marked `merged_into`. Unmerging moves exactly the
//! recorded rows back. Touchpoints that arrived between merge and unmerge stay with the target:
//! they were answered as the target's, and moving them silently would rewrite what agents saw.

use sqlx::Any;
use time::OffsetDateTime;

use super::events::audit;
use super::interactions::next_seq;
use super::rows::RowExt;
use super::{Store, StoreError, Tx};
use crate::domain::*;

#[derive(Debug, Clone, serde::Serialize)]
pub struct MergeRecord {
    pub id: MergeId,
    pub source_contact_id: ContactId,
    pub target_contact_id: ContactId,
    pub handle_ids: Vec<HandleId>,
    pub conversation_ids: Vec<ConversationId>,
    pub interaction_ids: Vec<InteractionId>,
    #[serde(with = "time::serde::rfc3339")]
    pub merged_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub unmerged_at: Option<OffsetDateTime>,
}

impl Store {
    /// Merges `source` into `target`.
    pub async fn merge_contacts(
        &self,
        source: ContactId,
        target: ContactId,
        actor: &str,
    ) -> Result<MergeRecord, StoreError> {
        if source == target {
            return Err(StoreError::Conflict("a contact cannot be merged into itself".into()));
        }
        let mut tx = self.begin().await?;
        for id in [source, target] {
            ensure_live(&mut tx, id).await?;
        }
        let handle_ids: Vec<HandleId> =
            ids_where(&mut tx, "SELECT id FROM handles WHERE contact_id = $1", source).await?;
        let conversation_ids: Vec<ConversationId> =
            ids_where(&mut tx, "SELECT id FROM conversations WHERE contact_id = $1", source).await?;
        let interaction_ids: Vec<InteractionId> = ids_where(
            &mut tx,
            "SELECT id FROM interactions WHERE contact_id = $1 ORDER BY seq",
            source,
        )
        .await?;

        move_rows(&mut tx, MOVE_HANDLE, &handle_ids, target).await?;
        move_rows(&mut tx, MOVE_CONVERSATION, &conversation_ids, target).await?;
        move_interactions(&mut tx, &interaction_ids, target).await?;
        let at = now();
        sqlx::query("UPDATE contacts SET merged_into = $1, updated_at = $2 WHERE id = $3")
            .bind(target.to_string())
            .bind(to_micros(at))
            .bind(source.to_string())
            .execute(&mut *tx)
            .await?;
        let record = MergeRecord {
            id: MergeId::new(),
            source_contact_id: source,
            target_contact_id: target,
            handle_ids,
            conversation_ids,
            interaction_ids,
            merged_at: at,
            unmerged_at: None,
        };
        sqlx::query(
            "INSERT INTO contact_merges (id, source_contact_id, target_contact_id, handle_ids, conversation_ids,
                                         interaction_ids, merged_by, merged_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(record.id.to_string())
        .bind(source.to_string())
        .bind(target.to_string())
        .bind(serde_json::to_string(&record.handle_ids).expect("ids serialise"))
        .bind(serde_json::to_string(&record.conversation_ids).expect("ids serialise"))
        .bind(serde_json::to_string(&record.interaction_ids).expect("ids serialise"))
        .bind(actor.to_owned())
        .bind(to_micros(at))
        .execute(&mut *tx)
        .await?;
        let data = serde_json::json!({"merge": record.id, "source": source, "target": target});
        audit(&mut tx, actor, "contact.merge", &source.to_string(), data.clone()).await?;
        audit(&mut tx, actor, "contact.merge", &target.to_string(), data).await?;
        tx.commit().await?;
        Ok(record)
    }

    /// Undoes a merge: the recorded handles, conversations and interactions go back to the source.
    pub async fn unmerge_contacts(&self, merge: MergeId, actor: &str) -> Result<MergeRecord, StoreError> {
        let mut tx = self.begin().await?;
        let mut record = merge_in(&mut tx, merge).await?;
        if record.unmerged_at.is_some() {
            return Err(StoreError::Conflict("this merge was already undone".into()));
        }
        let (source, target) = (record.source_contact_id, record.target_contact_id);
        let target_merged: Option<String> = sqlx::query_scalar("SELECT merged_into FROM contacts WHERE id = $1")
            .bind(target.to_string())
            .fetch_one(&mut *tx)
            .await?;
        if target_merged.is_some() {
            return Err(StoreError::Conflict(
                "the target contact was merged again since; undo that merge first".into(),
            ));
        }
        move_rows(&mut tx, MOVE_HANDLE, &record.handle_ids, source).await?;
        move_rows(&mut tx, MOVE_CONVERSATION, &record.conversation_ids, source).await?;
        move_interactions(&mut tx, &record.interaction_ids, source).await?;
        let at = now();
        sqlx::query("UPDATE contacts SET merged_into = NULL, updated_at = $1 WHERE id = $2")
            .bind(to_micros(at))
            .bind(source.to_string())
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE contact_merges SET unmerged_at = $1, unmerged_by = $2 WHERE id = $3")
            .bind(to_micros(at))
            .bind(actor.to_owned())
            .bind(merge.to_string())
            .execute(&mut *tx)
            .await?;
        let data = serde_json::json!({"merge": merge, "source": source, "target": target});
        audit(&mut tx, actor, "contact.unmerge", &source.to_string(), data.clone()).await?;
        audit(&mut tx, actor, "contact.unmerge", &target.to_string(), data).await?;
        tx.commit().await?;
        record.unmerged_at = Some(at);
        Ok(record)
    }

    /// The merges a contact took part in, as source or target, newest first.
    pub async fn merges_of(&self, contact: ContactId) -> Result<Vec<MergeRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM contact_merges WHERE source_contact_id = $1 OR target_contact_id = $1 ORDER BY merged_at DESC, id DESC",
        )
        .bind(contact.to_string())
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(merge_from_row).collect()
    }
}

async fn ensure_live(tx: &mut Tx<'_>, id: ContactId) -> Result<(), StoreError> {
    let merged: Option<Option<String>> =
        sqlx::query_scalar::<Any, Option<String>>("SELECT merged_into FROM contacts WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&mut **tx)
            .await?;
    match merged {
        None => Err(StoreError::NotFound("contact")),
        Some(Some(_)) => Err(StoreError::Conflict(format!(
            "contact {id} was already merged into another contact"
        ))),
        Some(None) => Ok(()),
    }
}

async fn ids_where<T: std::str::FromStr>(
    tx: &mut Tx<'_>,
    sql: &'static str,
    contact: ContactId,
) -> Result<Vec<T>, StoreError>
where
    T::Err: std::fmt::Display,
{
    sqlx::query_scalar::<Any, String>(sql)
        .bind(contact.to_string())
        .fetch_all(&mut **tx)
        .await?
        .iter()
        .map(|raw| super::parse_stored("id", raw))
        .collect()
}

const MOVE_HANDLE: &str = "UPDATE handles SET contact_id = $1 WHERE id = $2";
const MOVE_CONVERSATION: &str = "UPDATE conversations SET contact_id = $1 WHERE id = $2";

/// Runs `sql` (which sets contact `$1` on row `$2`) for each id.
async fn move_rows<T: ToString>(
    tx: &mut Tx<'_>,
    sql: &'static str,
    ids: &[T],
    to: ContactId,
) -> Result<(), StoreError> {
    for id in ids {
        sqlx::query(sql)
            .bind(to.to_string())
            .bind(id.to_string())
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// Moves interactions to another contact, giving each a new change sequence number so the
/// search index picks up its new contact.
async fn move_interactions(tx: &mut Tx<'_>, ids: &[InteractionId], to: ContactId) -> Result<(), StoreError> {
    if ids.is_empty() {
        return Ok(());
    }
    let first = next_seq(tx, ids.len() as i64).await?;
    for (offset, id) in ids.iter().enumerate() {
        sqlx::query("UPDATE interactions SET contact_id = $1, seq = $2 WHERE id = $3")
            .bind(to.to_string())
            .bind(first + offset as i64)
            .bind(id.to_string())
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

impl Store {
    pub async fn merge_record(&self, id: MergeId) -> Result<MergeRecord, StoreError> {
        let row = sqlx::query("SELECT * FROM contact_merges WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(self.reader())
            .await?
            .ok_or(StoreError::NotFound("merge"))?;
        merge_from_row(&row)
    }
}

async fn merge_in(tx: &mut Tx<'_>, id: MergeId) -> Result<MergeRecord, StoreError> {
    let row = sqlx::query("SELECT * FROM contact_merges WHERE id = $1")
        .bind(id.to_string())
        .fetch_optional(&mut **tx)
        .await?
        .ok_or(StoreError::NotFound("merge"))?;
    merge_from_row(&row)
}

fn merge_from_row(row: &sqlx::any::AnyRow) -> Result<MergeRecord, StoreError> {
    Ok(MergeRecord {
        id: row.parsed("id")?,
        source_contact_id: row.parsed("source_contact_id")?,
        target_contact_id: row.parsed("target_contact_id")?,
        handle_ids: row.json("handle_ids")?,
        conversation_ids: row.json("conversation_ids")?,
        interaction_ids: row.json("interaction_ids")?,
        merged_at: row.time("merged_at")?,
        unmerged_at: row.opt_time("unmerged_at")?,
    })
}
