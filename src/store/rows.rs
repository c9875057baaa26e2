//! Decoding of portable column types (UUID text, microsecond instants, JSON text), for rows
//! read through sqlx and rows read on the ingest writer's own connection alike.

use std::str::FromStr;

use sqlx::Row;
use sqlx::any::AnyRow;
use time::OffsetDateTime;

use super::{StoreError, parse_stored};
use crate::domain::from_micros;

/// A row's columns by name. Each kind of row says how to read a text and an integer; the rest
/// is built on those two.
pub(crate) trait RowExt {
    fn opt_text(&self, col: &str) -> Result<Option<String>, StoreError>;
    fn opt_int(&self, col: &str) -> Result<Option<i64>, StoreError>;

    fn text(&self, col: &str) -> Result<String, StoreError> {
        self.opt_text(col)?.ok_or_else(|| null(col))
    }
    fn int(&self, col: &str) -> Result<i64, StoreError> {
        self.opt_int(col)?.ok_or_else(|| null(col))
    }
    fn parsed<T: FromStr>(&self, col: &str) -> Result<T, StoreError>
    where
        T::Err: std::fmt::Display,
    {
        parse_stored(col, &self.text(col)?)
    }
    fn opt_parsed<T: FromStr>(&self, col: &str) -> Result<Option<T>, StoreError>
    where
        T::Err: std::fmt::Display,
    {
        self.opt_text(col)?.map(|raw| parse_stored(col, &raw)).transpose()
    }
    fn time(&self, col: &str) -> Result<OffsetDateTime, StoreError> {
        Ok(from_micros(self.int(col)?))
    }
    fn opt_time(&self, col: &str) -> Result<Option<OffsetDateTime>, StoreError> {
        Ok(self.opt_int(col)?.map(from_micros))
    }
    fn json<T: serde::de::DeserializeOwned>(&self, col: &str) -> Result<T, StoreError> {
        let raw = self.text(col)?;
        serde_json::from_str(&raw).map_err(|e| StoreError::Corrupt(format!("{col}: {e}")))
    }
}

fn null(col: &str) -> StoreError {
    StoreError::Corrupt(format!("{col} is null"))
}

impl RowExt for AnyRow {
    fn opt_text(&self, col: &str) -> Result<Option<String>, StoreError> {
        Ok(self.try_get::<Option<String>, _>(col)?)
    }
    fn opt_int(&self, col: &str) -> Result<Option<i64>, StoreError> {
        Ok(self.try_get::<Option<i64>, _>(col)?)
    }
    // sqlx's own errors name the column and the types.
    fn text(&self, col: &str) -> Result<String, StoreError> {
        Ok(self.try_get::<String, _>(col)?)
    }
    fn int(&self, col: &str) -> Result<i64, StoreError> {
        Ok(self.try_get::<i64, _>(col)?)
    }
}
