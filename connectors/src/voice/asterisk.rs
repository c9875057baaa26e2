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

/// The fields of one CSV line, unquoted.
struct Fields {
    text: String,
    ends: Vec<usize>,
}

impl Fields {
    fn len(&self) -> usize {
        self.ends.len()
    }

    fn get(&self, i: usize) -> Option<&str> {
        let start = match i {
            0 => 0,
            _ => *self.ends.get(i - 1)?,
        };
        Some(&self.text[start..*self.ends.get(i)?])
    }
}

thread_local! {
    /// One CSV reader per thread: building one (csv-core compiles a DFA) cost more than
    /// parsing the line, an eighth of a whole import's CPU.
    static CSV: std::cell::RefCell<csv_core::Reader> = std::cell::RefCell::new(csv_core::Reader::new());
}

/// Splits a line (without its line break) into its fields, as csv does for one record.
fn fields(line: &str) -> Result<Fields, CdrError> {
    CSV.with_borrow_mut(|reader| {
        reader.reset();
        // Unquoting only shortens: the output never outgrows the line.
        let mut output = vec![0; line.len().max(1)];
        let mut ends = vec![0; MAX_COLUMNS + 1];
        let (mut input, mut written, mut ended) = (line.as_bytes(), 0, 0);
        loop {
            // Ends are positions in the whole record; output goes where the slice starts.
            let (result, read, out, end) = reader.read_record(input, &mut output[written..], &mut ends[ended..]);
            input = &input[read..];
            written += out;
            ended += end;
            match result {
                csv_core::ReadRecordResult::Record => break,
                // Next round passes no input, which ends the record (an unclosed quote too).
                csv_core::ReadRecordResult::InputEmpty => {}
                csv_core::ReadRecordResult::OutputEndsFull => ends.resize(ends.len() * 2, 0),
                csv_core::ReadRecordResult::OutputFull => output.resize(output.len() * 2, 0),
                csv_core::ReadRecordResult::End => return Err(CdrError::Columns(0)),
            }
        }
        output.truncate(written);
        ends.truncate(ended);
        let text = String::from_utf8(output).map_err(|e| CdrError::Csv(e.to_string()))?;
        Ok(Fields { text, ends })
    })
}

/// Parses one line of `Master.csv` (without its line break).
pub fn parse_line(line: &str, offset: UtcOffset) -> Result<CallRecord, CdrError> {
    let record = fields(line)?;
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
    fn fields_are_unquoted_and_the_reused_reader_starts_each_line_afresh() {
        let split = |line: &str| {
            let f = fields(line).unwrap();
            (0..f.len()).map(|i| f.get(i).unwrap().to_owned()).collect::<Vec<_>>()
        };
        assert_eq!(split(r#""a ""b""","c,d",,e,"""#), ["a \"b\"", "c,d", "", "e", ""]);
        // An unclosed quote runs to the end of its line, and no further.
        assert_eq!(split(r#""x","unclosed,y"#), ["x", "unclosed,y"]);
        assert_eq!(split("1,2"), ["1", "2"]);
        // More fields than the ends buffer first holds are all counted.
        let wide = vec!["z"; 70].join(",");
        assert_eq!(parse_line(&wide, UtcOffset::UTC).unwrap_err(), CdrError::Columns(70));
        assert_eq!(split("é,ñ"), ["é", "ñ"]);
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
