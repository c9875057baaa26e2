//! Static files compiled into the binary, so `cargo run --release` serves them with nothing
//! else installed: the agent console under `/console/` and the embeddable chat widget.

use axum::Router;
use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

use super::AppState;

const WIDGET: &str = include_str!("../../web/widget/switchboard-chat.js");

/// The console's files: plain ES modules and CSS, no build step.
const CONSOLE: &[(&str, &str, &str)] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_str!("../../web/console/index.html"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("../../web/console/style.css"),
    ),
    ("app.js", JS, include_str!("../../web/console/app.js")),
    ("api.js", JS, include_str!("../../web/console/api.js")),
    ("dom.js", JS, include_str!("../../web/console/dom.js")),
    ("i18n.js", JS, include_str!("../../web/console/i18n.js")),
    ("live.js", JS, include_str!("../../web/console/live.js")),
    ("inbox.js", JS, include_str!("../../web/console/inbox.js")),
    ("conversation.js", JS, include_str!("../../web/console/conversation.js")),
    ("contact.js", JS, include_str!("../../web/console/contact.js")),
    ("search.js", JS, include_str!("../../web/console/search.js")),
    ("screenpop.js", JS, include_str!("../../web/console/screenpop.js")),
    ("shortcuts.js", JS, include_str!("../../web/console/shortcuts.js")),
    ("dashboard.js", JS, include_str!("../../web/console/dashboard.js")),
    ("reports.js", JS, include_str!("../../web/console/reports.js")),
];

const JS: &str = "text/javascript; charset=utf-8";

/// The console runs only its own scripts and styles; email bodies go into `srcdoc` frames with
/// an empty sandbox, which inherit this policy and may load nothing remote.
const CONSOLE_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; frame-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/console/") }))
        .route("/console", get(|| async { Redirect::to("/console/") }))
        .route("/console/", get(|| async { console_file("index.html") }))
        .route(
            "/console/{file}",
            get(|Path(file): Path<String>| async move { console_file(&file) }),
        )
        .route("/widget/switchboard-chat.js", get(widget))
}

fn console_file(name: &str) -> Response {
    match CONSOLE.iter().find(|(file, ..)| *file == name) {
        Some((_, content_type, body)) => (
            [
                (header::CONTENT_TYPE, *content_type),
                (header::CACHE_CONTROL, "no-cache"),
                (header::CONTENT_SECURITY_POLICY, CONSOLE_CSP),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
                (header::REFERRER_POLICY, "no-referrer"),
            ],
            *body,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such console file").into_response(),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_console_module_an_import_names_is_served() {
        for (file, _, body) in CONSOLE {
            for line in body.lines().filter(|l| l.trim_start().starts_with("import ")) {
                let Some(target) = line.split("from \"./").nth(1).and_then(|rest| rest.split('"').next()) else {
                    continue;
                };
                assert!(
                    CONSOLE.iter().any(|(name, ..)| *name == target),
                    "{file} imports {target}, which the hub does not serve"
                );
            }
        }
    }
}
