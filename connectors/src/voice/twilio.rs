//! Twilio's call status callbacks (form posts signed like SMS webhooks, see
//! [`crate::sms::twilio::validate`]). Only a terminal status describes a finished call; the
//! earlier ones (`queued`, `initiated`, `ringing`, `in-progress`) are progress reports.

use time::OffsetDateTime;

use super::{CallRecord, Disposition};
use crate::envelope::Direction;
use crate::sms::twilio::TwilioError;

/// What one call status callback says.
#[derive(Debug, Clone, PartialEq)]
pub enum CallStatus {
    /// The call is not over yet.
    InProgress {
        call_sid: String,
        status: String,
    },
    Finished(CallRecord),
}

fn get<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

pub fn status_callback(params: &[(String, String)], received_at: OffsetDateTime) -> Result<CallStatus, TwilioError> {
    let sid = get(params, "CallSid").ok_or(TwilioError::Missing("CallSid"))?;
    let status = get(params, "CallStatus").ok_or(TwilioError::Missing("CallStatus"))?;
    let disposition = match status {
        "completed" => Disposition::Answered,
        "busy" => Disposition::Busy,
        "no-answer" | "canceled" => Disposition::Missed,
        "failed" => Disposition::Failed,
        "queued" | "initiated" | "ringing" | "in-progress" => {
            return Ok(CallStatus::InProgress {
                call_sid: sid.to_owned(),
                status: status.to_owned(),
            });
        }
        other => {
            return Err(TwilioError::Invalid {
                field: "CallStatus",
                reason: format!("unknown status {other:?}"),
            });
        }
    };
    let direction = match get(params, "Direction").unwrap_or("inbound") {
        "inbound" => Direction::Inbound,
        d if d.starts_with("outbound") => Direction::Outbound,
        other => {
            return Err(TwilioError::Invalid {
                field: "Direction",
                reason: format!("unknown direction {other:?}"),
            });
        }
    };
    let duration: Option<u32> = match get(params, "CallDuration") {
        None => None,
        Some(raw) => Some(raw.parse().map_err(|_| TwilioError::Invalid {
            field: "CallDuration",
            reason: format!("{raw:?} is not seconds"),
        })?),
    };
    let from = get(params, "From").ok_or(TwilioError::Missing("From"))?;
    let to = get(params, "To").ok_or(TwilioError::Missing("To"))?;
    let started_at = duration.map_or(received_at, |d| received_at - time::Duration::seconds(i64::from(d)));
    Ok(CallStatus::Finished(CallRecord {
        call_id: format!("twilio:{sid}"),
        from: from.to_owned(),
        to: to.to_owned(),
        caller_name: get(params, "CallerName").map(str::to_owned),
        started_at,
        answered_at: (disposition == Disposition::Answered).then_some(started_at),
        ended_at: Some(received_at),
        disposition,
        duration_s: duration,
        talk_s: duration.filter(|_| disposition == Disposition::Answered),
        recording_url: get(params, "RecordingUrl").map(str::to_owned),
        notes: None,
        direction: Some(direction),
        source: "twilio",
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn a_completed_inbound_call_becomes_an_answered_record() {
        let at = OffsetDateTime::from_unix_timestamp(1_700_000_100).unwrap();
        let p = params(&[
            ("CallSid", "CA1"),
            ("CallStatus", "completed"),
            ("Direction", "inbound"),
            ("From", "+34600123456"),
            ("To", "+34910000000"),
            ("CallDuration", "100"),
            ("RecordingUrl", "https://api.twilio.com/rec/RE1"),
        ]);
        let CallStatus::Finished(call) = status_callback(&p, at).unwrap() else {
            panic!("a completed call is finished")
        };
        assert_eq!(call.call_id, "twilio:CA1");
        assert_eq!(call.disposition, Disposition::Answered);
        assert_eq!(call.started_at.unix_timestamp(), 1_700_000_000);
        assert_eq!(call.direction, Some(Direction::Inbound));
        assert_eq!(call.recording_url.as_deref(), Some("https://api.twilio.com/rec/RE1"));
    }

    #[test]
    fn progress_reports_and_bad_values_are_told_apart() {
        let at = OffsetDateTime::UNIX_EPOCH;
        assert!(matches!(
            status_callback(&params(&[("CallSid", "CA1"), ("CallStatus", "ringing")]), at),
            Ok(CallStatus::InProgress { .. })
        ));
        assert_eq!(
            status_callback(&params(&[("CallStatus", "busy")]), at).unwrap_err(),
            TwilioError::Missing("CallSid")
        );
        assert!(matches!(
            status_callback(&params(&[("CallSid", "CA1"), ("CallStatus", "exploded")]), at),
            Err(TwilioError::Invalid { .. })
        ));
        let busy = status_callback(
            &params(&[
                ("CallSid", "CA2"),
                ("CallStatus", "no-answer"),
                ("Direction", "outbound-api"),
                ("From", "+34910000000"),
                ("To", "+34600123456"),
            ]),
            at,
        )
        .unwrap();
        assert!(matches!(
            busy,
            CallStatus::Finished(CallRecord {
                disposition: Disposition::Missed,
                direction: Some(Direction::Outbound),
                ..
            })
        ));
    }
}
