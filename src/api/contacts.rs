//! Contacts: list, create, read, update; caller lookup; the cross-channel timeline; merge and unmerge.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use super::{ApiError, AppState, Body, Params, parse_id};
use crate::auth::Principal;
use crate::domain::*;
use crate::store::{ContactPatch, ContactQuery, ConversationFilter, TimelineCursor, TimelineFilter};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/contacts", get(list).post(create))
        .route("/contacts/lookup", get(lookup))
        .route("/contacts/merge", post(merge))
        .route("/contacts/{id}", get(read).patch(update))
        .route("/contacts/{id}/timeline", get(timeline))
        .route("/contacts/{id}/merges", get(merges))
        .route("/merges/{id}/unmerge", post(unmerge))
        .route("/contacts/by-external-id/{external_id}", axum::routing::put(upsert))
        .route("/attribute-definitions", get(definitions).post(define))
}

/// Handles as clients write them: `{"kind": "phone", "value": "+34 600 12 34 56"}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HandleInput {
    kind: HandleKind,
    value: String,
}

fn parse_handles(inputs: &[HandleInput], region: Region, field: &str) -> Result<Vec<Handle>, ApiError> {
    inputs
        .iter()
        .enumerate()
        .map(|(i, h)| {
            Handle::parse(h.kind, &h.value, region).map_err(|e| ApiError::field(&format!("{field}[{i}].value"), e))
        })
        .collect()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    name: Option<String>,
    limit: Option<i64>,
    after: Option<String>,
}

async fn list(
    State(state): State<AppState>,
    p: Principal,
    Params(q): Params<ListQuery>,
) -> Result<Json<Vec<Contact>>, ApiError> {
    let after = q.after.as_deref().map(|a| parse_id("after", a)).transpose()?;
    let query = ContactQuery {
        name: q.name,
        limit: page_size(q.limit, 50, 200)?,
        after,
        accounts: p.scope.accounts(),
    };
    Ok(Json(state.hub.store.contacts(&query).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateContact {
    name: Option<String>,
    #[serde(default)]
    handles: Vec<HandleInput>,
}

async fn create(
    State(state): State<AppState>,
    _p: Principal,
    Body(body): Body<CreateContact>,
) -> Result<(StatusCode, Json<Contact>), ApiError> {
    let handles = parse_handles(&body.handles, state.hub.settings.contacts.default_region, "handles")?;
    let contact = state.hub.store.create_contact(clean_name(body.name), &handles).await?;
    Ok((StatusCode::CREATED, Json(contact)))
}

/// A contact with the segments it is in, as the console shows it.
#[derive(serde::Serialize)]
struct ContactView {
    #[serde(flatten)]
    contact: Contact,
    segments: Vec<crate::store::SegmentBadge>,
}

async fn read(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<Json<ContactView>, ApiError> {
    let id = parse_id("id", &id)?;
    visible(&state, &p, id).await?;
    let contact = state.hub.store.contact(id).await?;
    let segments = state
        .hub
        .store
        .segment_badges(&[contact.id])
        .await?
        .remove(&contact.id)
        .unwrap_or_default();
    Ok(Json(ContactView { contact, segments }))
}

/// Refuses (as not found) a contact the caller's inboxes have never heard from.
pub(super) async fn visible(state: &AppState, p: &Principal, id: ContactId) -> Result<(), ApiError> {
    if state
        .hub
        .store
        .contact_visible(id, p.scope.accounts().as_deref())
        .await?
    {
        Ok(())
    } else {
        Err(ApiError::NotFound("contact not found".into()))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateContact {
    #[serde(default, deserialize_with = "double_option")]
    name: Option<Option<String>>,
    #[serde(default)]
    add_handles: Vec<HandleInput>,
    #[serde(default)]
    remove_handles: Vec<String>,
    /// Attribute values to set; `null` removes one.
    #[serde(default)]
    attributes: serde_json::Map<String, serde_json::Value>,
}

/// Tells `"name": null` (clear it) from a missing `name` (leave it).
fn double_option<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

async fn update(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    Body(body): Body<UpdateContact>,
) -> Result<Json<Contact>, ApiError> {
    let id = parse_id("id", &id)?;
    visible(&state, &p, id).await?;
    let patch = ContactPatch {
        name: body.name.map(clean_name),
        add_handles: parse_handles(
            &body.add_handles,
            state.hub.settings.contacts.default_region,
            "add_handles",
        )?,
        remove_handles: body
            .remove_handles
            .iter()
            .enumerate()
            .map(|(i, h)| parse_id(&format!("remove_handles[{i}]"), h))
            .collect::<Result<_, _>>()?,
        attributes: body.attributes,
    };
    Ok(Json(state.hub.store.update_contact(id, patch).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LookupQuery {
    phone: Option<String>,
    email: Option<String>,
}

/// How many recent interactions a lookup (a screen pop) returns.
const LOOKUP_RECENT: i64 = 50;

/// Caller lookup: a phone number in any spelling, or an email, to the contact, its 50 latest
/// interactions and its open conversations. Reads the store's handle index, not the search index.
async fn lookup(
    State(state): State<AppState>,
    p: Principal,
    Params(q): Params<LookupQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let region = state.hub.settings.contacts.default_region;
    let handle = match (&q.phone, &q.email) {
        (Some(phone), None) => {
            Handle::Phone(PhoneNumber::parse(phone, region).map_err(|e| ApiError::field("phone", e))?)
        }
        (None, Some(email)) => Handle::Email(EmailAddress::parse(email).map_err(|e| ApiError::field("email", e))?),
        _ => {
            return Err(ApiError::field("phone", "give exactly one of phone or email"));
        }
    };
    let store = &state.hub.store;
    let contact_id = store
        .contact_by_handle(&handle)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no contact has {handle}")))?;
    if !store.contact_visible(contact_id, p.scope.accounts().as_deref()).await? {
        return Err(ApiError::NotFound(format!("no contact has {handle}")));
    }
    let contact = store.contact(contact_id).await?;
    let recent = store
        .timeline(
            contact_id,
            &TimelineFilter {
                accounts: p.scope.accounts(),
                ..Default::default()
            },
            None,
            LOOKUP_RECENT,
        )
        .await?;
    let mut open = store
        .conversations(&ConversationFilter {
            contact_id: Some(contact_id),
            limit: 100,
            accounts: p.scope.accounts(),
            ..Default::default()
        })
        .await?;
    open.retain(|c| c.status != ConversationStatus::Resolved);
    Ok(Json(
        serde_json::json!({"contact": contact, "interactions": recent, "open_conversations": open}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TimelineQuery {
    channel: Option<ChannelKind>,
    direction: Option<Direction>,
    limit: Option<i64>,
    cursor: Option<String>,
}

async fn timeline(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    Params(q): Params<TimelineQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let id: ContactId = parse_id("id", &id)?;
    let store = &state.hub.store;
    store.contact(id).await?;
    visible(&state, &p, id).await?;
    let after = q
        .cursor
        .as_deref()
        .map(|c| TimelineCursor::decode(c).ok_or_else(|| ApiError::field("cursor", "not a cursor this API returned")))
        .transpose()?;
    let limit = page_size(q.limit, 50, 200)?;
    let items = store
        .timeline(
            id,
            &TimelineFilter {
                channel: q.channel,
                direction: q.direction,
                accounts: p.scope.accounts(),
            },
            after,
            limit,
        )
        .await?;
    let next = (items.len() as i64 == limit)
        .then(|| {
            items.last().map(|i| {
                TimelineCursor {
                    occurred_at: to_micros(i.occurred_at),
                    id: i.id,
                }
                .encode()
            })
        })
        .flatten();
    Ok(Json(serde_json::json!({"items": items, "next_cursor": next})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MergeRequest {
    /// The contact that disappears into the target.
    source_id: String,
    target_id: String,
}

async fn merge(
    State(state): State<AppState>,
    p: Principal,
    Body(body): Body<MergeRequest>,
) -> Result<(StatusCode, Json<crate::store::MergeRecord>), ApiError> {
    let source = parse_id("source_id", &body.source_id)?;
    let target = parse_id("target_id", &body.target_id)?;
    visible(&state, &p, source).await?;
    visible(&state, &p, target).await?;
    let record = state.hub.store.merge_contacts(source, target, &p.actor).await?;
    state.hub.search.wake();
    Ok((StatusCode::CREATED, Json(record)))
}

async fn unmerge(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<Json<crate::store::MergeRecord>, ApiError> {
    let id = parse_id("id", &id)?;
    let merged = state.hub.store.merge_record(id).await?;
    visible(&state, &p, merged.target_contact_id).await?;
    let record = state.hub.store.unmerge_contacts(id, &p.actor).await?;
    state.hub.search.wake();
    Ok(Json(record))
}

async fn merges(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<Json<Vec<crate::store::MergeRecord>>, ApiError> {
    let id = parse_id("id", &id)?;
    visible(&state, &p, id).await?;
    Ok(Json(state.hub.store.merges_of(id).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Upsert {
    name: Option<String>,
    #[serde(default)]
    handles: Vec<HandleInput>,
    #[serde(default)]
    attributes: serde_json::Map<String, serde_json::Value>,
}

/// A CRM or ERP pushes a customer by its own id: created the first time, updated after; the
/// same push again changes nothing (`"changed": false`).
async fn upsert(
    State(state): State<AppState>,
    _p: Principal,
    Path(external_id): Path<String>,
    Body(body): Body<Upsert>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let external_id = external_id.trim();
    if external_id.is_empty() || external_id.len() > 200 {
        return Err(ApiError::field("external_id", "must be 1 to 200 bytes"));
    }
    let handles = parse_handles(&body.handles, state.hub.settings.contacts.default_region, "handles")?;
    let name = clean_name(body.name);
    let (contact, created, changed) = state
        .hub
        .store
        .upsert_contact_by_external_id(external_id, name.as_deref(), &handles, &body.attributes)
        .await?;
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((
        status,
        Json(serde_json::json!({"contact": contact, "created": created, "changed": changed})),
    ))
}

async fn definitions(
    State(state): State<AppState>,
    _p: Principal,
) -> Result<Json<Vec<crate::attributes::AttributeDefinition>>, ApiError> {
    Ok(Json(state.hub.store.attribute_definitions().await?))
}

/// Admin: defines a typed attribute.
async fn define(
    State(state): State<AppState>,
    p: Principal,
    Body(definition): Body<crate::attributes::AttributeDefinition>,
) -> Result<(StatusCode, Json<crate::attributes::AttributeDefinition>), ApiError> {
    p.require(Role::Admin)?;
    definition.check().map_err(|e| ApiError::field(&e.field, e.reason))?;
    state.hub.store.create_attribute_definition(&definition).await?;
    Ok((StatusCode::CREATED, Json(definition)))
}

fn clean_name(name: Option<String>) -> Option<String> {
    name.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty())
}

/// A page size within `1..=max`, `default` when absent.
pub(super) fn page_size(limit: Option<i64>, default: i64, max: i64) -> Result<i64, ApiError> {
    match limit {
        None => Ok(default),
        Some(n) if (1..=max).contains(&n) => Ok(n),
        Some(_) => Err(ApiError::field("limit", format!("must be between 1 and {max}"))),
    }
}
