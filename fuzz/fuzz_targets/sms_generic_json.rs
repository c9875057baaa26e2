//! Any bytes as the generic signed-JSON SMS webhook.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_connectors::Region;
use switchboard_connectors::sms::generic::GenericSms;

fuzz_target!(|data: &[u8]| {
    if let Ok(sms) = serde_json::from_slice::<GenericSms>(data) {
        let region = Region::parse("ES").expect("ES is a region");
        let _ = sms.into_envelope(uuid::Uuid::nil(), region, time::OffsetDateTime::UNIX_EPOCH);
    }
});
