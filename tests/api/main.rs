//! Black-box tests of the hub: the real server on port 0, spoken to over HTTP only, on a temp
//! SQLite file and on a fresh PostgreSQL database. Each scenario is written once as an
//! `async fn(Backend)` and instantiated for both stores by `on_both_stores!`.

mod helpers;

mod attributes;
mod auth;
mod authz;
mod automation;
mod browser;
mod calls;
mod chat;
mod chromium;
mod cluster;
mod console;
mod contacts;
mod conversations;
mod crash;
mod email;
mod fake_twilio;
mod inbox;
mod ingest;
mod limits;
mod metrics;
mod operations;
mod search;
mod secrets;
mod sms;
mod validation;
mod voice;
