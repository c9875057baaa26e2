//! Any bytes as a fetched mail, whole or as an oversized mail's header: an envelope or an
//! error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_connectors::email::mime;

fuzz_target!(|data: &[u8]| {
    let now = time::OffsetDateTime::UNIX_EPOCH;
    let _ = mime::parse(data, uuid::Uuid::nil(), now, 1 << 16);
    let _ = mime::parse_oversized(data, 60_000_000, 50_000_000, uuid::Uuid::nil(), now);
});
