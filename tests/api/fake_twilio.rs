//! A local stand-in for Twilio's Messages REST API, answering as Twilio documents: 201 with the
//! message resource (`status: queued`), and errors as `{code, message, more_info, status}`
//! (20003 bad credentials, 21211 invalid `To`, 20429 too many requests). It records every
//! request it accepted, and can be told to answer the next requests with given errors.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine as _;
use serde_json::{Value, json};

pub const ACCOUNT_SID: &str = "AC0123456789abcdef0123456789abcdef";
pub const AUTH_TOKEN: &str = "twilio-auth-token-for-tests";

#[derive(Debug, Clone)]
pub struct SentMessage {
    pub sid: String,
    pub form: Vec<(String, String)>,
}

impl SentMessage {
    pub fn field(&self, name: &str) -> Option<&str> {
        self.form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct Inner {
    sent: Vec<SentMessage>,
    /// Answers forced on the next requests, before normal processing.
    forced: VecDeque<(u16, i64, &'static str)>,
    requests: usize,
}

#[derive(Clone, Default)]
pub struct FakeTwilio {
    inner: Arc<Mutex<Inner>>,
    pub base_url: String,
}

impl FakeTwilio {
    pub async fn start() -> Self {
        let mut fake = FakeTwilio::default();
        let app = Router::new()
            .route("/2010-04-01/Accounts/{sid}/Messages.json", post(create_message))
            .with_state(fake.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        fake.base_url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        fake
    }

    pub fn sent(&self) -> Vec<SentMessage> {
        self.inner.lock().unwrap().sent.clone()
    }

    pub fn requests(&self) -> usize {
        self.inner.lock().unwrap().requests
    }

    /// Makes the next request fail with `status` and Twilio error `code`.
    pub fn fail_next(&self, status: u16, code: i64, message: &'static str) {
        self.inner.lock().unwrap().forced.push_back((status, code, message));
    }
}

fn error(status: u16, code: i64, message: &str) -> axum::response::Response {
    let body = json!({"code": code, "message": message, "more_info": format!("https://www.twilio.com/docs/errors/{code}"), "status": status});
    (StatusCode::from_u16(status).unwrap(), Json(body)).into_response()
}

async fn create_message(
    State(fake): State<FakeTwilio>,
    Path(sid): Path<String>,
    headers: HeaderMap,
    body: String,
) -> axum::response::Response {
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{ACCOUNT_SID}:{AUTH_TOKEN}"))
    );
    let mut inner = fake.inner.lock().unwrap();
    inner.requests += 1;
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str()) || sid != ACCOUNT_SID {
        return error(401, 20003, "Authenticate");
    }
    if let Some((status, code, message)) = inner.forced.pop_front() {
        return error(status, code, message);
    }
    let form: Vec<(String, String)> = form_urlencoded::parse(body.as_bytes()).into_owned().collect();
    let get = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let to = get("To").unwrap_or_default();
    if !(to.starts_with('+') && to.len() > 8 && to[1..].bytes().all(|b| b.is_ascii_digit())) {
        return error(
            400,
            21211,
            &format!("The 'To' number {to} is not a valid phone number."),
        );
    }
    if get("Body").is_none_or(|b| b.is_empty()) {
        return error(400, 21602, "Message body is required.");
    }
    let message_sid = format!("SM{:032x}", inner.sent.len() + 1);
    inner.sent.push(SentMessage {
        sid: message_sid.clone(),
        form: form.clone(),
    });
    let resource: Value = json!({
        "account_sid": ACCOUNT_SID, "api_version": "2010-04-01", "body": get("Body"),
        "date_created": "Thu, 24 Aug 2023 05:01:45 +0000", "date_sent": null, "date_updated": "Thu, 24 Aug 2023 05:01:45 +0000",
        "direction": "outbound-api", "error_code": null, "error_message": null, "from": get("From"),
        "messaging_service_sid": get("MessagingServiceSid"), "num_media": "0", "num_segments": "1", "price": null, "price_unit": null,
        "sid": message_sid, "status": "queued", "to": to,
        "uri": format!("/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{message_sid}.json"),
    });
    (StatusCode::CREATED, Json(resource)).into_response()
}
