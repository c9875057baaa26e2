//! Supervisor endpoints: response-time reports (JSON or CSV), the live dashboard's snapshot,
//! business calendars and SLA policies. Reading needs the supervisor role, changing calendars
//! and policies the admin role.

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use serde::Deserialize;
use time::OffsetDateTime;

use super::{ApiError, AppState, Body, Params, parse_id};
use crate::auth::Principal;
use crate::domain::*;
use crate::metrics::calendar::{Calendar, CalendarSpec};
use crate::metrics::dashboard;
use crate::metrics::definitions::Targets;
use crate::metrics::report::{self, GroupBy};
use crate::store::{CalendarRecord, PolicyRecord};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/reports/summary", get(summary))
        .route("/dashboard", get(snapshot))
        .route("/calendars", get(calendars).post(create_calendar))
        .route("/channel-accounts/{id}/calendar", put(set_calendar))
        .route("/sla-policies", get(policies).post(create_policy))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SummaryQuery {
    #[serde(with = "time::serde::rfc3339")]
    from: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    to: OffsetDateTime,
    group_by: GroupBy,
    #[serde(default)]
    format: Format,
}

#[derive(Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum Format {
    #[default]
    Json,
    Csv,
}

/// The longest period one report may cover.
const MAX_DAYS: i64 = 366;

async fn summary(
    State(state): State<AppState>,
    p: Principal,
    Params(q): Params<SummaryQuery>,
) -> Result<Response, ApiError> {
    p.require(Role::Supervisor)?;
    if q.to <= q.from {
        return Err(ApiError::field("to", "must be after from"));
    }
    if q.to - q.from > time::Duration::days(MAX_DAYS) {
        return Err(ApiError::field(
            "to",
            format!("a report covers at most {MAX_DAYS} days"),
        ));
    }
    let rows = report::summary(&state.hub.store, q.from, q.to, q.group_by).await?;
    Ok(match q.format {
        Format::Json => Json(serde_json::json!({"from": q.from.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
            "to": q.to.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(), "group_by": q.group_by, "rows": rows}))
        .into_response(),
        Format::Csv => {
            let csv = report::to_csv(q.group_by, &rows).map_err(|e| ApiError::Internal(e.to_string()))?;
            (
                [
                    (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
                    (
                        header::CONTENT_DISPOSITION,
                        format!("attachment; filename=\"switchboard-report-{}.csv\"", q.from.date()),
                    ),
                ],
                csv,
            )
                .into_response()
        }
    })
}

async fn snapshot(State(state): State<AppState>, p: Principal) -> Result<Json<dashboard::Snapshot>, ApiError> {
    p.require(Role::Supervisor)?;
    Ok(Json(dashboard::snapshot(&state.hub).await?))
}

async fn calendars(State(state): State<AppState>, p: Principal) -> Result<Json<Vec<CalendarRecord>>, ApiError> {
    p.require(Role::Supervisor)?;
    Ok(Json(state.hub.store.calendars().await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewCalendar {
    name: String,
    time_zone: String,
    hours: std::collections::BTreeMap<String, Vec<[String; 2]>>,
    #[serde(default)]
    holidays: Vec<String>,
}

async fn create_calendar(
    State(state): State<AppState>,
    p: Principal,
    Body(body): Body<NewCalendar>,
) -> Result<(StatusCode, Json<CalendarRecord>), ApiError> {
    p.require(Role::Admin)?;
    if body.name.trim().is_empty() {
        return Err(ApiError::field("name", "must not be empty"));
    }
    let spec = CalendarSpec {
        time_zone: body.time_zone,
        hours: body.hours,
        holidays: body.holidays,
    };
    Calendar::parse(&spec).map_err(|e| ApiError::field(&e.field, e.reason))?;
    let spec = serde_json::to_value(&spec).map_err(|e| ApiError::Internal(e.to_string()))?;
    let created = state.hub.store.create_calendar(body.name.trim(), &spec).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InboxCalendar {
    calendar_id: Option<String>,
}

async fn set_calendar(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    Body(body): Body<InboxCalendar>,
) -> Result<StatusCode, ApiError> {
    p.require(Role::Admin)?;
    let account: ChannelAccountId = parse_id("id", &id)?;
    match state
        .hub
        .store
        .set_inbox_calendar(account, body.calendar_id.as_deref())
        .await
    {
        Err(crate::store::StoreError::NotFound("calendar")) => Err(ApiError::field("calendar_id", "no such calendar")),
        other => other.map(|()| StatusCode::NO_CONTENT).map_err(Into::into),
    }
}

async fn policies(State(state): State<AppState>, p: Principal) -> Result<Json<Vec<PolicyRecord>>, ApiError> {
    p.require(Role::Supervisor)?;
    Ok(Json(state.hub.store.sla_policies().await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewPolicy {
    name: String,
    channel_account_id: Option<String>,
    priority: Option<Priority>,
    first_response_s: Option<i64>,
    next_response_s: Option<i64>,
    resolution_s: Option<i64>,
    #[serde(default)]
    business_hours: bool,
    #[serde(default)]
    pause_when_pending: bool,
}

async fn create_policy(
    State(state): State<AppState>,
    p: Principal,
    Body(body): Body<NewPolicy>,
) -> Result<(StatusCode, Json<PolicyRecord>), ApiError> {
    p.require(Role::Admin)?;
    if body.name.trim().is_empty() {
        return Err(ApiError::field("name", "must not be empty"));
    }
    for (field, value) in [
        ("first_response_s", body.first_response_s),
        ("next_response_s", body.next_response_s),
        ("resolution_s", body.resolution_s),
    ] {
        if value.is_some_and(|v| !(1..=366 * 86_400).contains(&v)) {
            return Err(ApiError::field(field, "must be 1 second to 366 days"));
        }
    }
    if body.first_response_s.is_none() && body.next_response_s.is_none() && body.resolution_s.is_none() {
        return Err(ApiError::field(
            "first_response_s",
            "a policy needs at least one target",
        ));
    }
    let account = body
        .channel_account_id
        .as_deref()
        .map(|a| parse_id::<ChannelAccountId>("channel_account_id", a))
        .transpose()?;
    if let Some(account) = account {
        state.hub.store.channel_account(account).await.map_err(|e| match e {
            crate::store::StoreError::NotFound(_) => ApiError::field("channel_account_id", "no such channel account"),
            other => other.into(),
        })?;
    }
    let policy = PolicyRecord {
        id: uuid::Uuid::now_v7().to_string(),
        name: body.name.trim().to_owned(),
        channel_account_id: account,
        priority: body.priority,
        targets: Targets {
            first_response_s: body.first_response_s,
            next_response_s: body.next_response_s,
            resolution_s: body.resolution_s,
            business_hours: body.business_hours,
            pause_when_pending: body.pause_when_pending,
        },
    };
    state.hub.store.create_sla_policy(&policy).await?;
    Ok((StatusCode::CREATED, Json(policy)))
}
