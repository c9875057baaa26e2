//! FreeSWITCH's JSON CDR, as `mod_json_cdr` posts it: one document per call leg with
//! `variables` (all strings, percent-encoded by default: `encode-values`) and `callflow` (an
//! array, newest profile first; older builds repeat the key instead). Caller and destination
//! numbers live in `callflow[].caller_profile`; times are taken from the `*_epoch` variables,
//! which are UTC, where `answer_epoch` is `"0"` for a call nobody answered.

use percent_encoding::percent_decode_str;
use serde_json::Value;
use time::OffsetDateTime;

use super::{CallRecord, Disposition};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FreeswitchError {
    #[error("not a JSON CDR: {0}")]
    Json(String),
    #[error("variables.{0} is missing")]
    Missing(&'static str),
    #[error("variables.{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
}

/// A variable's value, percent-decoded.
fn var(doc: &Value, name: &str) -> Option<String> {
    let raw = doc.get("variables")?.get(name)?.as_str()?;
    Some(percent_decode_str(raw).decode_utf8_lossy().into_owned()).filter(|v| !v.is_empty())
}

/// The caller profile the call was first placed with (the lowest `profile_index`).
fn first_profile(doc: &Value) -> Option<&Value> {
    match doc.get("callflow")? {
        Value::Array(flows) => flows
            .iter()
            .min_by_key(|f| {
                f.get("profile_index")
                    .and_then(Value::as_str)
                    .and_then(|i| i.parse::<u32>().ok())
                    .unwrap_or(u32::MAX)
            })?
            .get("caller_profile"),
        flow @ Value::Object(_) => flow.get("caller_profile"),
        _ => None,
    }
}

fn epoch(doc: &Value, name: &'static str) -> Result<Option<OffsetDateTime>, FreeswitchError> {
    match var(doc, name).as_deref() {
        None | Some("0") => Ok(None),
        Some(raw) => {
            let secs: i64 = raw.parse().map_err(|_| FreeswitchError::Invalid {
                field: name,
                reason: format!("{raw:?} is not Unix seconds"),
            })?;
            OffsetDateTime::from_unix_timestamp(secs)
                .map(Some)
                .map_err(|_| FreeswitchError::Invalid {
                    field: name,
                    reason: format!("{raw} is out of range"),
                })
        }
    }
}

fn seconds(doc: &Value, name: &'static str) -> Result<Option<u32>, FreeswitchError> {
    var(doc, name)
        .map(|raw| {
            raw.parse().map_err(|_| FreeswitchError::Invalid {
                field: name,
                reason: format!("{raw:?} is not a number of seconds"),
            })
        })
        .transpose()
}

/// Parses one JSON CDR document.
pub fn parse(json: &[u8]) -> Result<CallRecord, FreeswitchError> {
    let doc: Value = serde_json::from_slice(json).map_err(|e| FreeswitchError::Json(e.to_string()))?;
    if !doc.get("variables").is_some_and(Value::is_object) {
        return Err(FreeswitchError::Json("no \"variables\" object".into()));
    }
    let uuid = var(&doc, "uuid").ok_or(FreeswitchError::Missing("uuid"))?;
    let profile = first_profile(&doc);
    let from_profile = |key: &str| {
        profile
            .and_then(|p| p.get(key))
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let from = from_profile("caller_id_number")
        .or_else(|| var(&doc, "caller_id_number"))
        .or_else(|| var(&doc, "effective_caller_id_number"))
        .or_else(|| var(&doc, "sip_from_user"))
        .ok_or(FreeswitchError::Missing("caller_id_number"))?;
    let to = from_profile("destination_number")
        .or_else(|| var(&doc, "destination_number"))
        .or_else(|| var(&doc, "sip_to_user"))
        .or_else(|| var(&doc, "dialed_user"))
        .ok_or(FreeswitchError::Missing("destination_number"))?;
    let started_at = epoch(&doc, "start_epoch")?.ok_or(FreeswitchError::Missing("start_epoch"))?;
    let answered_at = epoch(&doc, "answer_epoch")?;
    let ended_at = epoch(&doc, "end_epoch")?;
    let billsec = seconds(&doc, "billsec")?;
    let cause = var(&doc, "hangup_cause").unwrap_or_default();
    let answered = answered_at.is_some() || billsec.is_some_and(|b| b > 0);
    let disposition = if answered {
        if var(&doc, "last_app").is_some_and(|a| a.eq_ignore_ascii_case("voicemail")) {
            Disposition::Voicemail
        } else {
            Disposition::Answered
        }
    } else {
        match cause.as_str() {
            "USER_BUSY" => Disposition::Busy,
            "NO_ANSWER" | "ORIGINATOR_CANCEL" | "NO_USER_RESPONSE" | "ALLOTTED_TIMEOUT" | "NORMAL_CLEARING" | "" => {
                Disposition::Missed
            }
            _ => Disposition::Failed,
        }
    };
    Ok(CallRecord {
        call_id: format!("freeswitch:{uuid}"),
        from,
        to,
        caller_name: from_profile("caller_id_name").or_else(|| var(&doc, "caller_id_name")),
        started_at,
        answered_at,
        ended_at,
        disposition,
        duration_s: seconds(&doc, "duration")?,
        talk_s: billsec,
        recording_url: var(&doc, "recording_url"),
        notes: None,
        direction: None,
        source: "freeswitch",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Trimmed from a real mod_json_cdr document (encode-values=false), with its callflow array.
    const ANSWERED: &str = r#"{"core-uuid":"63e2315b-d538-4dfa-9ed5-af73ba6210b6","switchname":"teo",
      "channel_data":{"state":"CS_REPORTING","direction":"inbound"},
      "variables":{"uuid":"5a3a1d91-90d3-4db4-af5c-cc3ae15d93a4","sip_from_user":"1001","sip_to_user":"1002",
        "start_stamp":"2018-03-14 07:09:18","answer_stamp":"2018-03-14 07:09:27","end_stamp":"2018-03-14 07:09:48",
        "start_epoch":"1521025758","answer_epoch":"1521025767","end_epoch":"1521025788","duration":"30","billsec":"21",
        "hangup_cause":"NORMAL_CLEARING","last_app":"bridge"},
      "callflow":[{"profile_index":"2","caller_profile":{"caller_id_number":"1001","destination_number":"1003"}},
                  {"profile_index":"1","caller_profile":{"caller_id_name":"Extension 1001","caller_id_number":"1001","destination_number":"1002"}}]}"#;

    #[test]
    fn a_real_cdr_parses_from_its_first_caller_profile_and_epochs() {
        let call = parse(ANSWERED.as_bytes()).unwrap();
        assert_eq!(call.call_id, "freeswitch:5a3a1d91-90d3-4db4-af5c-cc3ae15d93a4");
        assert_eq!(
            (call.from.as_str(), call.to.as_str()),
            ("1001", "1002"),
            "the originally dialled number"
        );
        assert_eq!(call.disposition, Disposition::Answered);
        assert_eq!(call.started_at.unix_timestamp(), 1_521_025_758);
        assert_eq!(call.talk_s, Some(21));
        assert_eq!(call.caller_name.as_deref(), Some("Extension 1001"));
    }

    #[test]
    fn percent_encoded_values_and_unanswered_calls() {
        let encoded = r#"{"variables":{"uuid":"u-2","caller_id_number":"%2B34600123456","destination_number":"1001",
            "start_epoch":"1521025758","answer_epoch":"0","end_epoch":"1521025788","billsec":"0","hangup_cause":"USER_BUSY",
            "start_stamp":"2018-03-14%2007%3A09%3A18"}}"#;
        let call = parse(encoded.as_bytes()).unwrap();
        assert_eq!(call.from, "+34600123456");
        assert_eq!(call.answered_at, None);
        assert_eq!(call.disposition, Disposition::Busy);
        let cancelled = encoded.replace("USER_BUSY", "ORIGINATOR_CANCEL");
        assert_eq!(parse(cancelled.as_bytes()).unwrap().disposition, Disposition::Missed);
    }

    #[test]
    fn broken_documents_name_what_is_missing() {
        assert!(matches!(parse(b"not json"), Err(FreeswitchError::Json(_))));
        assert_eq!(
            parse(br#"{"variables":{}}"#).unwrap_err(),
            FreeswitchError::Missing("uuid")
        );
        let no_start = r#"{"variables":{"uuid":"u","caller_id_number":"600123456","destination_number":"1001"}}"#;
        assert_eq!(
            parse(no_start.as_bytes()).unwrap_err(),
            FreeswitchError::Missing("start_epoch")
        );
        let bad_epoch =
            r#"{"variables":{"uuid":"u","caller_id_number":"6","destination_number":"1","start_epoch":"soon"}}"#;
        assert!(matches!(
            parse(bad_epoch.as_bytes()),
            Err(FreeswitchError::Invalid {
                field: "start_epoch",
                ..
            })
        ));
    }
}
