//! Contacts and their handles.

use sqlx::Any;
use sqlx::any::AnyRow;

use super::rows::RowExt;
use super::{Db, Store, StoreError, Tx, sql};
use crate::domain::*;

/// What a contact update changes.
#[derive(Debug, Default)]
pub struct ContactPatch {
    /// `Some(None)` clears the name.
    pub name: Option<Option<String>>,
    pub add_handles: Vec<Handle>,
    pub remove_handles: Vec<HandleId>,
    /// Attribute values to set (`null` removes one); checked against the definitions in the
    /// same transaction.
    pub attributes: serde_json::Map<String, serde_json::Value>,
}

/// A page of the contact list.
#[derive(Debug)]
pub struct ContactQuery {
    /// Case-insensitive substring of the name.
    pub name: Option<String>,
    pub limit: i64,
    /// Return contacts with ids after this one (ids are time-ordered).
    pub after: Option<ContactId>,
    /// Only contacts visible to a caller limited to these inboxes; `None` for all.
    pub accounts: Option<Vec<ChannelAccountId>>,
}

impl Store {
    pub async fn contact(&self, id: ContactId) -> Result<Contact, StoreError> {
        let row = sqlx::query("SELECT * FROM contacts WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(self.reader())
            .await?
            .ok_or(StoreError::NotFound("contact"))?;
        let handles = handles_of(self.reader(), id).await?;
        contact_from_row(&row, handles)
    }

    pub async fn contacts(&self, q: &ContactQuery) -> Result<Vec<Contact>, StoreError> {
        let mut c = super::conditions::Conditions::default();
        c.when(true, "merged_into IS NULL")
            .with(
                "LOWER(name) LIKE {}",
                q.name.as_ref().map(|n| format!("%{}%", n.to_lowercase())),
            )
            .with("id > {}", q.after.map(|a| a.to_string()));
        let limit = c.param(q.limit);
        let visible = match q.accounts.as_deref() {
            None => String::new(),
            accounts => format!(
                " AND (NOT EXISTS (SELECT 1 FROM conversations c WHERE c.contact_id = contacts.id)
                       OR EXISTS (SELECT 1 FROM conversations c WHERE c.contact_id = contacts.id{}))",
                super::accounts_clause("c.channel_account_id", c.next_param(), accounts)
            ),
        };
        let sql = format!(
            "SELECT * FROM contacts WHERE {}{visible} ORDER BY id LIMIT {limit}",
            c.sql()
        );
        let query = c.bind(sqlx::query(sqlx::AssertSqlSafe(sql)));
        let rows = super::bind_accounts(query, q.accounts.as_deref())
            .fetch_all(self.reader())
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let id: ContactId = row.parsed("id")?;
            out.push(contact_from_row(&row, handles_of(self.reader(), id).await?)?);
        }
        Ok(out)
    }

    /// Whether a caller limited to `accounts` may see a contact: one who has written to one of
    /// those inboxes, or one nobody has a conversation with yet (created by hand).
    pub async fn contact_visible(
        &self,
        id: ContactId,
        accounts: Option<&[ChannelAccountId]>,
    ) -> Result<bool, StoreError> {
        let Some(accounts) = accounts else { return Ok(true) };
        let any: Option<String> = sqlx::query_scalar("SELECT id FROM conversations WHERE contact_id = $1 LIMIT 1")
            .bind(id.to_string())
            .fetch_optional(self.reader())
            .await?;
        if any.is_none() {
            return Ok(true);
        }
        let scope = super::accounts_clause("channel_account_id", 2, Some(accounts));
        let query = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT id FROM conversations WHERE contact_id = $1{scope} LIMIT 1"
        )))
        .bind(id.to_string());
        Ok(super::bind_accounts(query, Some(accounts))
            .fetch_optional(self.reader())
            .await?
            .is_some())
    }

    /// Creates a contact with the given handles; a handle that already belongs to someone is a conflict.
    pub async fn create_contact(&self, name: Option<String>, handles: &[Handle]) -> Result<Contact, StoreError> {
        let mut tx = self.begin().await?;
        let id = insert_contact(&mut tx, name.as_deref()).await?;
        for handle in handles {
            claim_handle(&mut tx, id, handle).await?;
        }
        tx.commit().await?;
        self.contact(id).await
    }

    pub async fn update_contact(&self, id: ContactId, patch: ContactPatch) -> Result<Contact, StoreError> {
        let mut tx = self.begin().await?;
        let live: Option<Option<String>> =
            sqlx::query_scalar::<Any, Option<String>>("SELECT merged_into FROM contacts WHERE id = $1")
                .bind(id.to_string())
                .fetch_optional(&mut *tx)
                .await?;
        match live {
            None => return Err(StoreError::NotFound("contact")),
            Some(Some(_)) => {
                return Err(StoreError::Conflict("contact was merged into another contact".into()));
            }
            Some(None) => {}
        }
        if let Some(name) = &patch.name {
            sqlx::query("UPDATE contacts SET name = $1, updated_at = $2 WHERE id = $3")
                .bind(name.clone())
                .bind(to_micros(now()))
                .bind(id.to_string())
                .execute(&mut *tx)
                .await?;
        }
        for handle in &patch.add_handles {
            claim_handle(&mut tx, id, handle).await?;
        }
        if !patch.attributes.is_empty() {
            set_attributes(&mut tx, id, &patch.attributes).await?;
        }
        for handle_id in &patch.remove_handles {
            // A handle that carried touchpoints stays: removing it would orphan their sender.
            let used: i64 = sqlx::query_scalar::<Any, i64>("SELECT COUNT(*) FROM interactions WHERE handle_id = $1")
                .bind(handle_id.to_string())
                .fetch_one(&mut *tx)
                .await?;
            if used > 0 {
                return Err(StoreError::Conflict(format!(
                    "handle {handle_id} has interactions and cannot be removed"
                )));
            }
            let done = sqlx::query("DELETE FROM handles WHERE id = $1 AND contact_id = $2")
                .bind(handle_id.to_string())
                .bind(id.to_string())
                .execute(&mut *tx)
                .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound("handle"));
            }
        }
        tx.commit().await?;
        self.contact(id).await
    }

    /// The live contact a handle belongs to, if any.
    pub async fn contact_by_handle(&self, handle: &Handle) -> Result<Option<ContactId>, StoreError> {
        sqlx::query_scalar::<Any, String>("SELECT contact_id FROM handles WHERE kind = $1 AND value = $2")
            .bind(handle.kind().as_str())
            .bind(handle.value())
            .fetch_optional(self.reader())
            .await?
            .map(|raw| super::parse_stored("contact_id", &raw))
            .transpose()
    }
}

async fn handles_of<'e, E: sqlx::Executor<'e, Database = Any>>(
    executor: E,
    contact: ContactId,
) -> Result<Vec<StoredHandle>, StoreError> {
    sqlx::query("SELECT id, kind, value FROM handles WHERE contact_id = $1 ORDER BY created_at, id")
        .bind(contact.to_string())
        .fetch_all(executor)
        .await?
        .iter()
        .map(|row| {
            Ok(StoredHandle {
                id: row.parsed("id")?,
                kind: row.parsed("kind")?,
                value: row.text("value")?,
            })
        })
        .collect()
}

fn contact_from_row(row: &AnyRow, handles: Vec<StoredHandle>) -> Result<Contact, StoreError> {
    Ok(Contact {
        id: row.parsed("id")?,
        name: row.opt_text("name")?,
        merged_into: row.opt_parsed("merged_into")?,
        handles,
        attributes: row.json("attributes")?,
        created_at: row.time("created_at")?,
        updated_at: row.time("updated_at")?,
    })
}

/// The handle's row and the contact it belongs to, if known.
async fn find_handle(tx: &mut impl Db, handle: &Handle) -> Result<Option<(HandleId, ContactId)>, StoreError> {
    Ok(find_handle_of_named(tx, handle)
        .await?
        .map(|(handle, contact, _)| (handle, contact)))
}

/// The handle's row, the contact it belongs to and whether that contact has a name, if known.
pub(crate) async fn find_handle_of_named(
    tx: &mut impl Db,
    handle: &Handle,
) -> Result<Option<(HandleId, ContactId, bool)>, StoreError> {
    let row = sql(
        "SELECT h.id, h.contact_id, c.name FROM handles h JOIN contacts c ON c.id = h.contact_id
         WHERE h.kind = $1 AND h.value = $2",
    )
    .bind(handle.kind().as_str())
    .bind(handle.value())
    .fetch_optional(tx)
    .await?;
    row.map(|r| Ok((r.parsed("id")?, r.parsed("contact_id")?, r.opt_text("name")?.is_some())))
        .transpose()
}

pub(crate) async fn insert_contact(tx: &mut impl Db, name: Option<&str>) -> Result<ContactId, StoreError> {
    let id = ContactId::new();
    let at = to_micros(now());
    sql("INSERT INTO contacts (id, name, created_at, updated_at) VALUES ($1, $2, $3, $3)")
        .bind(id.to_string())
        .bind(name.map(str::to_owned))
        .bind(at)
        .execute(tx)
        .await?;
    Ok(id)
}

/// Inserts a handle for `contact`; `None` when another writer holds it already.
pub(crate) async fn insert_handle(
    tx: &mut impl Db,
    contact: ContactId,
    handle: &Handle,
) -> Result<Option<HandleId>, StoreError> {
    let id = HandleId::new();
    let inserted = sql(
        "INSERT INTO handles (id, contact_id, kind, value, created_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (kind, value) DO NOTHING",
    )
    .bind(id.to_string())
    .bind(contact.to_string())
    .bind(handle.kind().as_str())
    .bind(handle.value())
    .bind(to_micros(now()))
    .execute(tx)
    .await?;
    Ok((inserted == 1).then_some(id))
}

/// Gives `handle` to `contact`, or fails naming the handle if it belongs to someone else.
async fn claim_handle(tx: &mut Tx<'_>, contact: ContactId, handle: &Handle) -> Result<HandleId, StoreError> {
    match find_handle(tx, handle).await? {
        Some((id, owner)) if owner == contact => Ok(id),
        Some(_) => Err(StoreError::Conflict(format!(
            "handle {handle} belongs to another contact"
        ))),
        None => insert_handle(tx, contact, handle)
            .await?
            .ok_or_else(|| StoreError::Conflict(format!("handle {handle} belongs to another contact"))),
    }
}

/// Applies attribute changes to a contact, checked against the definitions; all or nothing.
async fn set_attributes(
    tx: &mut Tx<'_>,
    id: ContactId,
    changes: &serde_json::Map<String, serde_json::Value>,
) -> Result<bool, StoreError> {
    let definitions = super::attributes::definitions_in(tx).await?;
    let current: String = sqlx::query_scalar("SELECT attributes FROM contacts WHERE id = $1")
        .bind(id.to_string())
        .fetch_one(&mut **tx)
        .await?;
    let current: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&current).map_err(|e| StoreError::Corrupt(format!("contact attributes: {e}")))?;
    let next =
        crate::attributes::apply(&definitions, &current, changes, "attributes").map_err(|e| StoreError::Invalid {
            field: e.field,
            reason: e.reason,
        })?;
    if next == current {
        return Ok(false);
    }
    sqlx::query("UPDATE contacts SET attributes = $1, updated_at = $2 WHERE id = $3")
        .bind(serde_json::Value::Object(next).to_string())
        .bind(to_micros(now()))
        .bind(id.to_string())
        .execute(&mut **tx)
        .await?;
    // Segments follow the contact's data in the same transaction, so its next conversation
    // already gets the priority its new segment gives.
    super::automation::attributes_changed_in(tx, id).await?;
    Ok(true)
}

impl Store {
    /// A CRM's upsert: the contact with this external id (created when new), with the given
    /// name, extra handles and attribute values. Returns the contact, whether it was created, and
    /// whether anything changed (a repeat of the same upsert changes nothing).
    pub async fn upsert_contact_by_external_id(
        &self,
        external_id: &str,
        name: Option<&str>,
        handles: &[Handle],
        attributes: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<(Contact, bool, bool), StoreError> {
        let mut tx = self.begin().await?;
        let (id, created, changed) = upsert_by_external_in(&mut tx, external_id, name, handles, attributes).await?;
        tx.commit().await?;
        Ok((self.contact(id).await?, created, changed))
    }

    /// Upserts many contacts in one transaction: all of them, or (on the first bad row, or for
    /// a dry run) none. Returns how many were created, changed and left as they were.
    pub async fn upsert_contacts(
        &self,
        rows: &[ContactUpsert],
        dry_run: bool,
        on_row: impl Fn(),
    ) -> Result<UpsertReport, RowError> {
        let mut tx = self.begin().await.map_err(|e| RowError { row: 0, error: e })?;
        let mut report = UpsertReport::default();
        for (n, row) in rows.iter().enumerate() {
            let (_, created, changed) = upsert_by_external_in(
                &mut tx,
                &row.external_id,
                row.name.as_deref(),
                &row.handles,
                &row.attributes,
            )
            .await
            .map_err(|error| RowError {
                row: row.line.unwrap_or(n + 1),
                error,
            })?;
            on_row();
            match (created, changed) {
                (true, _) => report.created += 1,
                (false, true) => report.changed += 1,
                (false, false) => report.unchanged += 1,
            }
        }
        if dry_run {
            tx.rollback().await.map_err(|e| RowError {
                row: 0,
                error: e.into(),
            })?;
        } else {
            tx.commit().await.map_err(|e| RowError {
                row: 0,
                error: e.into(),
            })?;
        }
        Ok(report)
    }
}

/// One contact of a bulk upsert.
#[derive(Debug, Clone)]
pub struct ContactUpsert {
    /// Where it came from, for errors: the file's line number.
    pub line: Option<usize>,
    pub external_id: String,
    pub name: Option<String>,
    pub handles: Vec<Handle>,
    pub attributes: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct UpsertReport {
    pub created: usize,
    pub changed: usize,
    pub unchanged: usize,
}

/// A bulk upsert stopped at this row; nothing was applied.
#[derive(Debug, thiserror::Error)]
#[error("row {row}: {error}")]
pub struct RowError {
    pub row: usize,
    pub error: StoreError,
}

async fn upsert_by_external_in(
    tx: &mut Tx<'_>,
    external_id: &str,
    name: Option<&str>,
    handles: &[Handle],
    attributes: &serde_json::Map<String, serde_json::Value>,
) -> Result<(ContactId, bool, bool), StoreError> {
    let external = Handle::External(external_id.to_owned());
    let (id, created) = match find_handle(tx, &external).await? {
        Some((_, contact)) => (contact, false),
        None => {
            let id = insert_contact(tx, name).await?;
            insert_handle(tx, id, &external)
                .await?
                .ok_or_else(|| StoreError::Conflict("the external id was claimed concurrently; retry".into()))?;
            (id, true)
        }
    };
    let mut changed = created;
    if let Some(name) = name {
        let renamed = sqlx::query(
            "UPDATE contacts SET name = $1, updated_at = $2 WHERE id = $3 AND (name IS NULL OR name <> $1)",
        )
        .bind(name.to_owned())
        .bind(to_micros(now()))
        .bind(id.to_string())
        .execute(&mut **tx)
        .await?;
        changed |= renamed.rows_affected() > 0;
    }
    for handle in handles {
        let known = find_handle(tx, handle).await?.is_some_and(|(_, owner)| owner == id);
        if !known {
            claim_handle(tx, id, handle).await?;
            changed = true;
        }
    }
    if !attributes.is_empty() {
        changed |= set_attributes(tx, id, attributes).await?;
    }
    Ok((id, created, changed))
}

/// Gives a nameless contact the name a channel reported (a mail's display name, a chat visitor's).
pub(crate) async fn name_if_unnamed(tx: &mut impl Db, contact: ContactId, name: &str) -> Result<(), StoreError> {
    sql("UPDATE contacts SET name = $1, updated_at = $2 WHERE id = $3 AND name IS NULL")
        .bind(name.to_owned())
        .bind(to_micros(now()))
        .bind(contact.to_string())
        .execute(tx)
        .await?;
    Ok(())
}

impl Store {
    /// A handle's row id and the contact it belongs to.
    pub async fn handle(&self, handle: &Handle) -> Result<Option<(HandleId, ContactId)>, StoreError> {
        let row = sqlx::query("SELECT id, contact_id FROM handles WHERE kind = $1 AND value = $2")
            .bind(handle.kind().as_str())
            .bind(handle.value())
            .fetch_optional(self.reader())
            .await?;
        row.map(|r| Ok((r.parsed("id")?, r.parsed("contact_id")?))).transpose()
    }
}
