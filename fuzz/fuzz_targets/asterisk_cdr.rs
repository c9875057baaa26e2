//! Any text as an Asterisk Master.csv line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_connectors::voice::asterisk;

fuzz_target!(|data: &[u8]| {
    let line = String::from_utf8_lossy(data);
    let _ = asterisk::parse_line(&line, time::UtcOffset::UTC);
});
