//! Any bytes as a Twilio SMS webhook: the form, its signature (form and raw-body forms), the
//! inbound message and the status callback.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_connectors::Region;
use switchboard_connectors::sms::twilio::{self, SignedBody};

fuzz_target!(|data: &[u8]| {
    let params: Vec<(String, String)> = form_urlencoded::parse(data).into_owned().collect();
    let header = params.first().map(|(_, v)| v.as_str());
    let url = "https://hub.example/webhooks/sms/x/twilio?bodySHA256=00";
    let _ = twilio::validate("token", url, SignedBody::Form(&params), header);
    let _ = twilio::validate("token", url, SignedBody::Raw(data), header);
    let region = Region::parse("ES").expect("ES is a region");
    let _ = twilio::inbound_envelope(&params, uuid::Uuid::nil(), region, time::OffsetDateTime::UNIX_EPOCH);
    let _ = twilio::status_callback(&params);
});
