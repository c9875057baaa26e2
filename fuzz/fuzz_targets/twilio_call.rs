//! Any bytes as a Twilio voice status callback form.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_connectors::voice::twilio;

fuzz_target!(|data: &[u8]| {
    let params: Vec<(String, String)> = form_urlencoded::parse(data).into_owned().collect();
    let _ = twilio::status_callback(&params, time::OffsetDateTime::UNIX_EPOCH);
});
