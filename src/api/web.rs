//! Static files compiled into the binary, so `cargo run --release` serves them with nothing
//! else installed: the embeddable chat widget.

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use super::AppState;

const WIDGET: &str = include_str!("../../web/widget/switchboard-chat.js");

pub fn router() -> Router<AppState> {
    Router::new().route("/widget/switchboard-chat.js", get(widget))
}

async fn widget() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
            // Any site may load the script; what it may do is checked per chat account.
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
        ],
        WIDGET,
    )
}
