//! Any bytes as a FreeSWITCH JSON CDR.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_connectors::voice::freeswitch;

fuzz_target!(|data: &[u8]| {
    let _ = freeswitch::parse(data);
});
