//! `GET /ws`: the agent's real-time socket. It pushes new and revised interactions, conversation
//! changes, the agent's own screen pops, other agents' activity ("Bea is replying") and
//! presence; the console sends its own activity back. The handshake is authenticated like any API call
//! (the session cookie, from a browser) and refuses a cross-site Origin. A consumer too slow to
//! keep up is told to resync from the API instead of being buffered without bound.

use axum::Router;
use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade, close_code};
use axum::http::{HeaderMap, header};
use axum::response::Response;
use axum::routing::get;
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;

use super::{ApiError, AppState};
use crate::auth::Principal;
use crate::bus::{Activity, HubEvent};
use crate::domain::{ConversationId, Role};

pub fn router() -> Router<AppState> {
    Router::new().route("/ws", get(upgrade))
}

async fn upgrade(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    check_origin(&headers, &state.hub.settings.server.public_url)?;
    let limit = state.hub.settings.limits.websocket_frame_bytes;
    Ok(ws
        .max_message_size(limit)
        .max_frame_size(limit)
        .on_upgrade(move |socket| serve(socket, state, principal)))
}

/// A browser always sends Origin on a WebSocket handshake; it must be the hub's own page.
fn check_origin(headers: &HeaderMap, public_url: &str) -> Result<(), ApiError> {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) else {
        return Ok(());
    };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
    let origin_host = origin
        .split_once("://")
        .map_or("", |(_, rest)| rest)
        .trim_end_matches('/');
    let public = public_url.trim_end_matches('/');
    if origin == public || (!host.is_empty() && origin_host == host) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(format!(
            "origin {origin} may not open an agent socket"
        )))
    }
}

/// What a console tells the hub over its socket.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum Frame {
    /// The agent is looking at, writing in, or has left a conversation.
    Activity {
        conversation_id: ConversationId,
        activity: Activity,
    },
}

async fn serve(socket: WebSocket, state: AppState, principal: Principal) {
    let (mut outgoing, mut incoming) = socket.split();
    let mut events = state.hub.bus.subscribe();
    let agent = match state.hub.store.agent(principal.agent_id).await {
        Ok(agent) => agent,
        Err(e) => {
            tracing::warn!(agent = %principal.agent_id, error = %e, "agent socket refused");
            return;
        }
    };
    state.desks.arrived(&state.hub, agent.id).await;
    let hello = serde_json::json!({"type": "hello", "agent_id": agent.id});
    if outgoing.send(Message::Text(hello.to_string().into())).await.is_ok() {
        let closing = closing(&state);
        tokio::pin!(closing);
        let send = async {
            loop {
                let received = tokio::select! {
                    received = events.recv() => received,
                    () = &mut closing => {
                        let _ = outgoing.send(close(close_code::AWAY, "the hub is shutting down")).await;
                        return;
                    }
                };
                let message = match received {
                    Ok(HubEvent::SessionsEnded { agent_id }) => {
                        if agent_id == agent.id && !session_live(&state, &principal).await {
                            let _ = outgoing
                                .send(close(close_code::POLICY, "the session has ended; log in again"))
                                .await;
                            return;
                        }
                        continue;
                    }
                    Ok(HubEvent::ScreenPop { agent_id, .. }) if agent_id != agent.id => continue,
                    // An agent's own activity comes back to nobody's benefit.
                    Ok(HubEvent::AgentActivity { agent_id, .. }) if agent_id == agent.id => continue,
                    Ok(HubEvent::Dashboard { .. }) if !principal.role.at_least(Role::Supervisor) => continue,
                    Ok(HubEvent::MetricsRecomputed) => continue,
                    // Only what happens in the agent's own inboxes.
                    Ok(event) if event.channel_account().is_some_and(|a| !principal.scope.allows(a)) => continue,
                    Ok(event) => serde_json::to_string(&event).unwrap_or_default(),
                    Err(RecvError::Lagged(missed)) => {
                        serde_json::json!({"type": "resync", "missed": missed}).to_string()
                    }
                    Err(RecvError::Closed) => return,
                };
                if outgoing.send(Message::Text(message.into())).await.is_err() {
                    return;
                }
            }
        };
        let mut open_conversation = None;
        let receive = async {
            while let Some(Ok(message)) = incoming.next().await {
                let text = match message {
                    Message::Text(text) => text,
                    Message::Close(_) => return,
                    _ => continue,
                };
                match serde_json::from_str::<Frame>(&text) {
                    Ok(Frame::Activity {
                        conversation_id,
                        activity,
                    }) => {
                        let Ok(conversation) = state.hub.store.conversation(conversation_id).await else {
                            continue;
                        };
                        if !principal.scope.allows(conversation.channel_account_id) {
                            continue;
                        }
                        open_conversation =
                            (activity != Activity::Left).then_some((conversation_id, conversation.channel_account_id));
                        state.hub.bus.publish(HubEvent::AgentActivity {
                            agent_id: agent.id,
                            agent_name: agent.name.clone(),
                            conversation_id,
                            channel_account_id: conversation.channel_account_id,
                            activity,
                        });
                    }
                    Err(e) => tracing::debug!(agent = %agent.id, error = %e, "agent socket frame ignored"),
                }
            }
        };
        tokio::select! {
            _ = send => {}
            _ = receive => {}
        }
        if let Some((conversation_id, channel_account_id)) = open_conversation {
            state.hub.bus.publish(HubEvent::AgentActivity {
                agent_id: agent.id,
                agent_name: agent.name.clone(),
                conversation_id,
                channel_account_id,
                activity: Activity::Left,
            });
        }
    }
    state.desks.left(&state.hub, agent.id).await;
}

/// Completes when the node starts shutting down.
pub(super) fn closing(state: &AppState) -> impl std::future::Future<Output = ()> + Send + 'static {
    let mut closing = state.closing.clone();
    async move {
        let _ = closing.wait_for(|closing| *closing).await;
    }
}

/// A close frame with a code and a reason.
pub(super) fn close(code: u16, reason: &'static str) -> Message {
    Message::Close(Some(axum::extract::ws::CloseFrame {
        code,
        reason: reason.into(),
    }))
}

/// Whether the session the socket was opened with still stands (API tokens have none to end).
async fn session_live(state: &AppState, principal: &Principal) -> bool {
    match &principal.session {
        Some(digest) => state.hub.store.session_live(digest).await.unwrap_or(true),
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(origin: Option<&str>, host: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, host.parse().unwrap());
        if let Some(o) = origin {
            h.insert(header::ORIGIN, o.parse().unwrap());
        }
        h
    }

    #[test]
    fn only_the_hubs_own_origin_may_open_a_socket() {
        let public = "https://hub.example.com";
        assert!(
            check_origin(&headers(None, "127.0.0.1:8080"), public).is_ok(),
            "non-browser clients send no Origin"
        );
        assert!(check_origin(&headers(Some("https://hub.example.com"), "10.0.0.5"), public).is_ok());
        assert!(check_origin(&headers(Some("http://127.0.0.1:8080"), "127.0.0.1:8080"), public).is_ok());
        assert!(check_origin(&headers(Some("https://evil.example"), "127.0.0.1:8080"), public).is_err());
    }
}
