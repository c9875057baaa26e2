//! Authentication: every API route needs it; sessions need CSRF for writes; tokens are checked.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;
use crate::on_both_stores;

on_both_stores!(
    unauthenticated_calls_are_refused,
    a_session_needs_its_csrf_token_to_change_anything,
    repeated_wrong_passwords_lock_the_account_for_a_while,
    only_admins_create_accounts_agents_and_tokens,
    a_password_change_ends_every_other_session_and_closes_its_sockets,
);

async fn unauthenticated_calls_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let account = app.api_account("api").await;
    let anonymous = reqwest::Client::new();
    let routes = [
        ("GET", "/api/v1/contacts".to_owned()),
        ("GET", "/api/v1/search?q=x".to_owned()),
        ("GET", "/api/v1/conversations".to_owned()),
        ("GET", "/api/v1/contacts/lookup?phone=600123456".to_owned()),
        ("POST", "/api/v1/interactions".to_owned()),
        ("POST", "/api/v1/channel-accounts".to_owned()),
    ];
    for (method, path) in &routes {
        let url = format!("{}{path}", app.base);
        let request = || {
            match *method {
            "GET" => anonymous.get(&url),
            _ => anonymous.post(&url).json(&json!({"channel_account_id": account, "external_id": "x", "contact": {"email": "a@b.es"}, "text": "x"})),
        }
        };
        let response = request().send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{method} {path}");
        let wrong = request().bearer_auth("sbt_not-a-real-token").send().await.unwrap();
        assert_eq!(
            wrong.status(),
            StatusCode::UNAUTHORIZED,
            "{method} {path} with a wrong token"
        );
    }
    let (_, contacts) = app.get("/api/v1/contacts").await;
    assert_eq!(contacts.as_array().unwrap().len(), 0, "the refused push wrote nothing");
    let health = anonymous.get(format!("{}/healthz", app.base)).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK, "health checks need no login");
}

async fn a_session_needs_its_csrf_token_to_change_anything(backend: Backend) {
    let app = spawn_app(backend).await;
    let session = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let (status, me) = session.get("/api/v1/auth/me").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["agent"]["email"], ADMIN_EMAIL);
    assert_eq!(me["csrf_token"], session.csrf.as_str());

    let forged = session
        .http
        .post(format!("{}/api/v1/contacts", app.base))
        .json(&json!({"name": "forged"}))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let (status, _) = session.post("/api/v1/contacts", json!({"name": "real"})).await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, list) = app.get("/api/v1/contacts").await;
    assert_eq!(
        list.as_array().unwrap().len(),
        1,
        "only the request with the token wrote"
    );

    let (status, _) = session.post("/api/v1/auth/logout", json!({})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = session.get("/api/v1/auth/me").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the session ended");
}

async fn repeated_wrong_passwords_lock_the_account_for_a_while(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.auth.login_max_failures = 3).await;
    let client = reqwest::Client::new();
    let attempt = |password: &'static str| {
        let client = client.clone();
        let url = format!("{}/api/v1/auth/login", app.base);
        async move {
            client
                .post(url)
                .json(&json!({"email": ADMIN_EMAIL, "password": password}))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    for _ in 0..3 {
        assert_eq!(attempt("wrong-password").await, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(attempt("wrong-password").await, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        attempt(ADMIN_PASSWORD).await,
        StatusCode::TOO_MANY_REQUESTS,
        "even the right password waits"
    );
    let unknown = client
        .post(format!("{}/api/v1/auth/login", app.base))
        .json(&json!({"email": "ghost@example.com", "password": "whatever-password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);
}

async fn only_admins_create_accounts_agents_and_tokens(backend: Backend) {
    let app = spawn_app(backend).await;
    let (status, agent) = app
        .post(
            "/api/v1/agents",
            json!({"email": "eva@example.com", "name": "Eva", "role": "agent", "password": "eva-password-1"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{agent}");
    let eva = app.login("eva@example.com", "eva-password-1").await;
    for (path, body) in [
        ("/api/v1/channel-accounts", json!({"kind": "api", "name": "x"})),
        (
            "/api/v1/agents",
            json!({"email": "x@example.com", "name": "X", "role": "admin", "password": "password-123"}),
        ),
        ("/api/v1/api-tokens", json!({"name": "x", "role": "admin"})),
    ] {
        let (status, body) = eva.post(path, body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {body}");
    }
    let (status, _) = eva.post("/api/v1/contacts", json!({"name": "agents may"})).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = app
        .post(
            "/api/v1/agents",
            json!({"email": "EVA@example.com", "name": "Eva 2", "role": "agent", "password": "eva-password-2"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "emails are unique whatever their case");
}

async fn a_password_change_ends_every_other_session_and_closes_its_sockets(backend: Backend) {
    use futures::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

    let app = spawn_app(backend).await;
    let (status, agent) = app
        .post(
            "/api/v1/agents",
            json!({"email": "nora@example.com", "name": "Nora", "role": "agent", "password": "nora-password-1"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    // Nora is signed in on her laptop and on a shared computer, where a console is open.
    let laptop = app.login("nora@example.com", "nora-password-1").await;
    let shared_cookie = app.session_cookie("nora@example.com", "nora-password-1").await;
    let mut shared_socket = app.agent_socket(&shared_cookie, None).await.unwrap();
    let shared_get = || {
        app.http
            .get(format!("{}/api/v1/auth/me", app.base))
            .header("cookie", &shared_cookie)
            .send()
    };
    assert_eq!(shared_get().await.unwrap().status(), StatusCode::OK);

    // A wrong current password changes nothing.
    let (status, body) = laptop
        .put(
            "/api/v1/auth/me/password",
            json!({"current_password": "guess-1234", "new_password": "nora-password-2"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["field"], "current_password");
    assert_eq!(shared_get().await.unwrap().status(), StatusCode::OK);
    // An API token cannot change a password.
    let (status, _) = app
        .call(
            reqwest::Method::PUT,
            "/api/v1/auth/me/password",
            Some(json!({"current_password": ADMIN_PASSWORD, "new_password": "another-password-1"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (status, body) = laptop
        .put(
            "/api/v1/auth/me/password",
            json!({"current_password": "nora-password-1", "new_password": "nora-password-2"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["sessions_ended"], 1);
    // The laptop goes on; the shared computer is signed out and its console told so.
    assert_eq!(laptop.get("/api/v1/auth/me").await.0, StatusCode::OK);
    assert_eq!(shared_get().await.unwrap().status(), StatusCode::UNAUTHORIZED);
    let closed = loop {
        match tokio::time::timeout(std::time::Duration::from_secs(5), shared_socket.next()).await {
            Ok(Some(Ok(Message::Close(frame)))) => break frame.map(|f| f.code),
            Ok(Some(Ok(_))) => continue,
            _ => break None,
        }
    };
    assert_eq!(closed, Some(CloseCode::Policy));
    // The old password no longer signs in; the new one does.
    let old = app
        .http
        .post(format!("{}/api/v1/auth/login", app.base))
        .json(&json!({"email": "nora@example.com", "password": "nora-password-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(old.status(), StatusCode::UNAUTHORIZED);
    app.login("nora@example.com", "nora-password-2").await;

    // An admin's reset ends every session, the laptop's too.
    let (status, body) = app
        .call(
            reqwest::Method::PUT,
            &format!("/api/v1/agents/{}/password", agent["id"].as_str().unwrap()),
            Some(json!({"password": "nora-password-3"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(laptop.get("/api/v1/auth/me").await.0, StatusCode::UNAUTHORIZED);
    let (status, _) = laptop
        .put(
            &format!("/api/v1/agents/{}/password", agent["id"].as_str().unwrap()),
            json!({"password": "x-password-1"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}
