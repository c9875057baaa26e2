//! `GET /search`: ranked full-text search over every touchpoint, with filters.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use time::OffsetDateTime;

use super::contacts::page_size;
use super::{ApiError, AppState, Params, parse_id};
use crate::auth::Principal;
use crate::domain::*;
use crate::search::Filters;

pub fn router() -> Router<AppState> {
    Router::new().route("/search", get(search))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchQuery {
    q: String,
    contact_id: Option<String>,
    channel: Option<ChannelKind>,
    direction: Option<Direction>,
    /// RFC 3339, inclusive.
    #[serde(default, with = "time::serde::rfc3339::option")]
    from: Option<OffsetDateTime>,
    /// RFC 3339, exclusive.
    #[serde(default, with = "time::serde::rfc3339::option")]
    to: Option<OffsetDateTime>,
    limit: Option<i64>,
    offset: Option<usize>,
    /// Count every match rather than stopping at [`crate::search::COUNT_LIMIT`] (slower for common words).
    #[serde(default)]
    exact_total: bool,
}

/// Deepest result reachable by paging.
const MAX_OFFSET: usize = 10_000;

async fn search(
    State(state): State<AppState>,
    p: Principal,
    Params(q): Params<SearchQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let max_chars = state.hub.settings.limits.search_query_chars;
    if q.q.chars().count() > max_chars {
        return Err(ApiError::field("q", format!("must be at most {max_chars} characters")));
    }
    let limit = page_size(q.limit, 20, 100)? as usize;
    let offset = q.offset.unwrap_or(0);
    if offset > MAX_OFFSET {
        return Err(ApiError::field("offset", format!("must be at most {MAX_OFFSET}")));
    }
    let contact: Option<ContactId> = q.contact_id.as_deref().map(|c| parse_id("contact_id", c)).transpose()?;
    let filters = Filters {
        contact_id: contact.map(|c| c.to_string()),
        channel: q.channel.map(|c| c.as_str().to_owned()),
        direction: q.direction.map(|d| d.as_str().to_owned()),
        channel_accounts: p.scope.accounts().map(|a| a.iter().map(ToString::to_string).collect()),
        from: q.from.map(to_micros),
        to: q.to.map(to_micros),
    };
    let page = state
        .hub
        .search
        .search(&q.q, filters, limit, offset, q.exact_total)
        .await?;
    let ids: Vec<InteractionId> = page.hits.iter().map(|(id, _)| *id).collect();
    let mut found = state.hub.store.interactions(&ids).await?;
    // The index may briefly lag a change in the store; the store is the truth.
    let hits: Vec<_> = page
        .hits
        .iter()
        .filter_map(|(id, score)| {
            let interaction = found.remove(id)?;
            Some(serde_json::json!({"score": score, "interaction": interaction}))
        })
        .collect();
    Ok(Json(serde_json::json!({
        "total": page.total.count,
        "total_exact": page.total.exact,
        "hits": hits,
    })))
}
