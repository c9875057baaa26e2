//! Call legs assembled from separate call events (ringing, answered, hangup).

use sqlx::any::AnyRow;
use time::OffsetDateTime;

use super::rows::RowExt;
use super::{Store, StoreError};
use crate::domain::*;

/// What one call event says; absent fields say nothing.
#[derive(Debug, Clone)]
pub struct CallEvent {
    pub account: ChannelAccountId,
    pub call_id: String,
    /// `ringing`, `answered` or `hangup`.
    pub kind: &'static str,
    pub at: OffsetDateTime,
    pub from: Option<String>,
    pub to: Option<String>,
    pub extension: Option<String>,
    pub direction: Option<Direction>,
    /// How the call ended, when the PBX says (`busy`, `failed`, `voicemail`, …).
    pub disposition: Option<String>,
    pub recording_url: Option<String>,
    pub notes: Option<String>,
}

/// Everything known about a call so far.
#[derive(Debug, Clone)]
pub struct CallLeg {
    pub call_id: String,
    pub from: Option<String>,
    pub to: Option<String>,
    pub extension: Option<String>,
    pub direction: Option<Direction>,
    pub ringing_at: Option<OffsetDateTime>,
    pub answered_at: Option<OffsetDateTime>,
    pub ended_at: Option<OffsetDateTime>,
    pub disposition: Option<String>,
    pub recording_url: Option<String>,
    pub notes: Option<String>,
    pub interaction_id: Option<InteractionId>,
}

impl Store {
    /// Records an event and merges it into its call's leg. Returns the merged leg, and whether
    /// this exact event had been recorded before (then nothing changed).
    pub async fn record_call_event(&self, event: &CallEvent) -> Result<(CallLeg, bool), StoreError> {
        let mut tx = self.begin().await?;
        let fresh = sqlx::query(
            "INSERT INTO call_events (channel_account_id, call_id, event, received_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (channel_account_id, call_id, event) DO NOTHING",
        )
        .bind(event.account.to_string())
        .bind(event.call_id.clone())
        .bind(event.kind)
        .bind(to_micros(now()))
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if fresh {
            let at = Some(to_micros(event.at));
            let time_of = |kind: &str| if event.kind == kind { at } else { None };
            sqlx::query(
                "INSERT INTO call_legs (channel_account_id, call_id, from_number, to_number, extension, direction,
                                        ringing_at, answered_at, ended_at, disposition, recording_url, notes, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
                 ON CONFLICT (channel_account_id, call_id) DO UPDATE SET
                   from_number = COALESCE(call_legs.from_number, excluded.from_number),
                   to_number = COALESCE(call_legs.to_number, excluded.to_number),
                   extension = COALESCE(excluded.extension, call_legs.extension),
                   direction = COALESCE(call_legs.direction, excluded.direction),
                   ringing_at = COALESCE(call_legs.ringing_at, excluded.ringing_at),
                   answered_at = COALESCE(call_legs.answered_at, excluded.answered_at),
                   ended_at = COALESCE(call_legs.ended_at, excluded.ended_at),
                   disposition = COALESCE(excluded.disposition, call_legs.disposition),
                   recording_url = COALESCE(excluded.recording_url, call_legs.recording_url),
                   notes = COALESCE(excluded.notes, call_legs.notes),
                   updated_at = excluded.updated_at",
            )
            .bind(event.account.to_string())
            .bind(event.call_id.clone())
            .bind(event.from.clone())
            .bind(event.to.clone())
            .bind(event.extension.clone())
            .bind(event.direction.map(|d| d.as_str()))
            .bind(time_of("ringing"))
            .bind(time_of("answered"))
            .bind(time_of("hangup"))
            .bind(event.disposition.clone())
            .bind(event.recording_url.clone())
            .bind(event.notes.clone())
            .bind(to_micros(now()))
            .execute(&mut *tx)
            .await?;
        }
        let row = sqlx::query("SELECT * FROM call_legs WHERE channel_account_id = $1 AND call_id = $2")
            .bind(event.account.to_string())
            .bind(event.call_id.clone())
            .fetch_one(&mut *tx)
            .await?;
        let leg = leg_from_row(&row)?;
        tx.commit().await?;
        Ok((leg, !fresh))
    }

    /// Remembers which interaction shows a call.
    pub async fn link_call(
        &self,
        account: ChannelAccountId,
        call_id: &str,
        interaction: InteractionId,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        sqlx::query("UPDATE call_legs SET interaction_id = $1 WHERE channel_account_id = $2 AND call_id = $3")
            .bind(interaction.to_string())
            .bind(account.to_string())
            .bind(call_id.to_owned())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}

fn leg_from_row(row: &AnyRow) -> Result<CallLeg, StoreError> {
    Ok(CallLeg {
        call_id: row.text("call_id")?,
        from: row.opt_text("from_number")?,
        to: row.opt_text("to_number")?,
        extension: row.opt_text("extension")?,
        direction: row.opt_parsed("direction")?,
        ringing_at: row.opt_time("ringing_at")?,
        answered_at: row.opt_time("answered_at")?,
        ended_at: row.opt_time("ended_at")?,
        disposition: row.opt_text("disposition")?,
        recording_url: row.opt_text("recording_url")?,
        notes: row.opt_text("notes")?,
        interaction_id: row.opt_parsed("interaction_id")?,
    })
}
