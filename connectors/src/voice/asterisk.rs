//! Asterisk's `cdr_csv` format (`Master.csv`), as `cdr/cdr_csv.c` writes it: one line per call
//! leg, no header; columns accountcode, src, dst, dcontext, clid, channel, dstchannel, lastapp,
//! lastdata, start, answer, end, duration, billsec, disposition, amaflags, then optionally
//! uniqueid and userfield (`loguniqueid`, `loguserfield` in cdr.conf) and peeraccount, linkedid,
//! sequence (`newcdrcolumns`). Strings are double-quoted with embedded quotes doubled; numbers
//! are bare; an unanswered call's `answer` is empty; times are `%Y-%m-%d %T` in the server's
//! local time (or UTC with `usegmtime`), so the offset is a setting.

use sha2::{Digest, Sha256};
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

use super::{CallRecord, Disposition};

const MIN_COLUMNS: usize = 16;
const MAX_COLUMNS: usize = 21;

/// What is wrong with one CDR line.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CdrError {
    #[error("expected {MIN_COLUMNS} to {MAX_COLUMNS} columns, found {0}")]
    Columns(usize),
    #[error("column {column}: {reason}")]
    Field { column: &'static str, reason: String },
    #[error("not valid CSV: {0}")]
    Csv(String),
}

fn field_error(column: &'static str, reason: impl Into<String>) -> CdrError {
    CdrError::Field {
        column,
        reason: reason.into(),
    }
}

/// Parses one line of `Master.csv` (without its line break).
pub fn parse_line(line: &str, offset: UtcOffset) -> Result<CallRecord, CdrError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .buffer_capacity(line.len().max(64))
        .from_reader(line.as_bytes());
    let mut record = csv::StringRecord::new();
    match reader.read_record(&mut record) {
        Ok(true) => {}
        Ok(false) => return Err(CdrError::Columns(0)),
        Err(e) => return Err(CdrError::Csv(e.to_string())),
    }
    if record.len() < MIN_COLUMNS || record.len() > MAX_COLUMNS {
        return Err(CdrError::Columns(record.len()));
    }
    let col = |i: usize| record.get(i).unwrap_or("").trim();
    let start = timestamp(col(9), offset).map_err(|r| field_error("start", r))?;
    let answer = match col(10) {
        "" => None,
        raw => Some(timestamp(raw, offset).map_err(|r| field_error("answer", r))?),
    };
    let end = match col(11) {
        "" => None,
        raw => Some(timestamp(raw, offset).map_err(|r| field_error("end", r))?),
    };
    let duration: u32 = col(12)
        .parse()
        .map_err(|_| field_error("duration", format!("{:?} is not a number of seconds", col(12))))?;
    let billsec: u32 = col(13)
        .parse()
        .map_err(|_| field_error("billsec", format!("{:?} is not a number of seconds", col(13))))?;
    let voicemail = col(7).eq_ignore_ascii_case("VoiceMail");
    let disposition = match col(14) {
        "ANSWERED" if voicemail => Disposition::Voicemail,
        "ANSWERED" => Disposition::Answered,
        "NO ANSWER" => Disposition::Missed,
        "BUSY" => Disposition::Busy,
        "FAILED" | "CONGESTION" | "UNKNOWN" => Disposition::Failed,
        other => return Err(field_error("disposition", format!("unknown disposition {other:?}"))),
    };
    let uniqueid = record.get(16).map(str::trim).filter(|u| !u.is_empty());
    // Several legs of one call share a uniqueid; the line itself tells them apart, and hashing it
    // makes a re-import of the same file find the same ids.
    let digest = hex::encode(&Sha256::digest(line.trim_end().as_bytes())[..8]);
    let call_id = match uniqueid {
        Some(u) => format!("asterisk:{u}:{digest}"),
        None => format!("asterisk:{digest}"),
    };
    Ok(CallRecord {
        call_id,
        from: col(1).to_owned(),
        to: col(2).to_owned(),
        caller_name: caller_name(col(4)),
        started_at: start,
        answered_at: answer,
        ended_at: end,
        disposition,
        duration_s: Some(duration),
        talk_s: Some(billsec),
        recording_url: None,
        notes: record
            .get(17)
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(str::to_owned),
        direction: None,
        source: "asterisk",
    })
}

fn timestamp(raw: &str, offset: UtcOffset) -> Result<OffsetDateTime, String> {
    PrimitiveDateTime::parse(
        raw,
        format_description!("[year]-[month]-[day] [hour]:[minute]:[second]"),
    )
    .map(|t| t.assume_offset(offset))
    .map_err(|_| format!("{raw:?} is not a time like 2024-01-15 10:30:00"))
}

/// The name of a caller id like `"Ana García" <600123456>`.
fn caller_name(clid: &str) -> Option<String> {
    let rest = clid.strip_prefix('"')?;
    let name = &rest[..rest.find('"')?];
    (!name.trim().is_empty()).then(|| name.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Real lines as cdr_csv wrote them (quoted in public CDR-parsing projects), 18 columns.
    const BUSY: &str = r#""","8001","8002","sip0","""8001"" <8001>","TELCHAN/5/22","SIP/sip0-00000013","Dial","SIP/8002@sip0,,gT","2020-08-27 11:02:40",,"2020-08-27 11:02:40",0,0,"BUSY","DOCUMENTATION","1598518960.99","""#;
    const NO_ANSWER: &str = r#""ast_h323","3711","1110","default","""Bryl A"" <3711>","OOH323/avayaipo-1945","SIP/1110-000009be","Dial","SIP/1110","2018-09-07 11:08:03",,"2018-09-07 11:08:31",28,0,"NO ANSWER","DOCUMENTATION","1536293283.12653","""#;
    const ANSWERED_16: &str = r#""","1001","1002","from-internal","""John Doe"" <1001>","PJSIP/1001-00000001","PJSIP/1002-00000002","Dial","PJSIP/1002,30","2024-01-15 10:30:00","2024-01-15 10:30:02","2024-01-15 10:30:45",45,43,"ANSWERED","DOCUMENTATION""#;

    #[test]
    fn real_lines_parse_with_quotes_commas_and_empty_answers() {
        let busy = parse_line(BUSY, UtcOffset::UTC).unwrap();
        assert_eq!((busy.from.as_str(), busy.to.as_str()), ("8001", "8002"));
        assert_eq!(busy.disposition, Disposition::Busy);
        assert_eq!(busy.answered_at, None);
        assert_eq!(busy.caller_name.as_deref(), Some("8001"));
        assert!(busy.call_id.starts_with("asterisk:1598518960.99:"));

        let missed = parse_line(NO_ANSWER, UtcOffset::UTC).unwrap();
        assert_eq!(missed.disposition, Disposition::Missed);
        assert_eq!(missed.caller_name.as_deref(), Some("Bryl A"));
        assert_eq!(missed.duration_s, Some(28));

        let answered = parse_line(ANSWERED_16, UtcOffset::from_hms(1, 0, 0).unwrap()).unwrap();
        assert_eq!(answered.disposition, Disposition::Answered);
        assert_eq!(answered.talk_s, Some(43));
        assert_eq!(
            answered.started_at.unix_timestamp(),
            1_705_311_000,
            "10:30 at +01:00 is 09:30 UTC"
        );
        assert_eq!(answered.caller_name.as_deref(), Some("John Doe"));
    }

    #[test]
    fn the_same_line_always_gets_the_same_id_and_legs_of_one_call_differ() {
        let a = parse_line(BUSY, UtcOffset::UTC).unwrap();
        let again = parse_line(BUSY, UtcOffset::UTC).unwrap();
        let other_leg = parse_line(&BUSY.replace("SIP/sip0-00000013", "SIP/sip0-00000014"), UtcOffset::UTC).unwrap();
        assert_eq!(a.call_id, again.call_id);
        assert_ne!(a.call_id, other_leg.call_id);
    }

    #[test]
    fn broken_lines_say_what_is_wrong() {
        assert_eq!(
            parse_line(r#""","1001","1002""#, UtcOffset::UTC).unwrap_err(),
            CdrError::Columns(3)
        );
        let truncated = &ANSWERED_16[..ANSWERED_16.len() - 40];
        assert!(matches!(
            parse_line(truncated, UtcOffset::UTC),
            Err(CdrError::Columns(_))
        ));
        let bad_time = ANSWERED_16.replace("2024-01-15 10:30:00", "yesterday");
        assert!(matches!(
            parse_line(&bad_time, UtcOffset::UTC),
            Err(CdrError::Field { column: "start", .. })
        ));
        let bad_number = ANSWERED_16.replace(",45,43,", ",4x,43,");
        assert!(matches!(
            parse_line(&bad_number, UtcOffset::UTC),
            Err(CdrError::Field { column: "duration", .. })
        ));
        let bad_disposition = ANSWERED_16.replace("\"ANSWERED\"", "\"MAYBE\"");
        assert!(matches!(
            parse_line(&bad_disposition, UtcOffset::UTC),
            Err(CdrError::Field {
                column: "disposition",
                ..
            })
        ));
    }

    #[test]
    fn a_call_answered_by_voicemail_is_told_apart() {
        let vm = ANSWERED_16.replace("\"Dial\"", "\"VoiceMail\"");
        assert_eq!(
            parse_line(&vm, UtcOffset::UTC).unwrap().disposition,
            Disposition::Voicemail
        );
    }
}
