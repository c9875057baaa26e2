//! The visitor side of web chat, outside `/api/v1` and without an agent login: a session
//! endpoint that issues (or confirms) the visitor's signed token, and the visitor's WebSocket.
//!
//! Frames are JSON objects with a `type`. From the visitor: `message` (`client_id`, `text`: a
//! resend with the same `client_id` is stored once), `resume` (`after_seq`: everything of the
//! conversation after that position), `identify` (`name`, `email`, `phone`: links the chat to
//! the contact with that handle). From the hub: `hello`, `ack` (`client_id`, `seq`, `id`),
//! `message` (the conversation's messages, the visitor's own and the agents' replies, with their
//! `seq`), `identified`, and `error` (`code`, `message`): a bad frame is answered, never fatal.
//! Read receipts go both ways: the visitor sends `read` (`seq`: seen up to there), which agents'
//! consoles show; the visitor gets `read` when an agent opens the conversation.

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade, close_code};
use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{Value, json};
use switchboard_connectors::{Content, InboundEnvelope, ThreadingHints};
use uuid::Uuid;

use super::visitors::{Routed, Subscription};
use super::{ApiError, AppState, Body, parse_id};
use crate::bus::{Activity, HubEvent};
use crate::chat::{ChatSettings, verify_visitor, visitor_token};
use crate::domain::*;
use crate::store::{ContactPatch, StoreError};
use switchboard_connectors::chat::VisitorFrame as Frame;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/chat/{account}/session", post(session))
        .route("/chat/{account}/ws", get(socket))
        // The widget runs on customers' sites; which sites may use it is checked per account.
        .layer(
            tower_http::cors::CorsLayer::new()
                .allow_origin(tower_http::cors::AllowOrigin::mirror_request())
                .allow_methods([axum::http::Method::POST])
                .allow_headers([header::CONTENT_TYPE]),
        )
}

/// Longest chat message, in characters.
const MAX_TEXT: usize = 10_000;

async fn chat_account(state: &AppState, raw: &str, headers: &HeaderMap) -> Result<ChannelAccount, ApiError> {
    let id: ChannelAccountId = parse_id("account", raw)?;
    let account = match state.hub.store.channel_account(id).await {
        Ok(account) if account.kind == ChannelKind::Chat => account,
        Ok(_) | Err(StoreError::NotFound(_)) => return Err(ApiError::NotFound(format!("no chat account {id}"))),
        Err(e) => return Err(e.into()),
    };
    let origin = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok());
    if !ChatSettings::of(&account)?.allows(origin) {
        return Err(ApiError::Forbidden(format!(
            "origin {} may not use this chat",
            origin.unwrap_or("(none)")
        )));
    }
    Ok(account)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SessionRequest {
    token: Option<String>,
}

/// Confirms a visitor's token, or issues one to a new visitor (at most
/// `chat.sessions_per_minute_per_address` new ones per client address).
async fn session(
    State(state): State<AppState>,
    Path(account): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Body(body): Body<SessionRequest>,
) -> Result<Json<Value>, ApiError> {
    let account = chat_account(&state, &account, &headers).await?;
    let visitor = match body.token.as_deref() {
        Some(token) => verify_visitor(&account, token)
            .ok_or_else(|| ApiError::Unauthorized("the visitor token is not valid for this chat".into()))?,
        None => {
            let address = client_address(&state, peer, &headers);
            if state.chat_limits.session(address).is_err() {
                return Err(ApiError::TooManyRequests);
            }
            Uuid::now_v7()
        }
    };
    Ok(Json(
        json!({"token": visitor_token(&account, visitor), "visitor_id": visitor}),
    ))
}

/// The client's address: the connection's, or behind a proxy that writes it (`server.forwarded_for`)
/// the first one in `X-Forwarded-For`.
fn client_address(state: &AppState, peer: SocketAddr, headers: &HeaderMap) -> IpAddr {
    let forwarded = || {
        headers
            .get("x-forwarded-for")?
            .to_str()
            .ok()?
            .split(',')
            .next()?
            .trim()
            .parse()
            .ok()
    };
    match state.hub.settings.server.forwarded_for {
        true => forwarded().unwrap_or(peer.ip()),
        false => peer.ip(),
    }
}

#[derive(Deserialize)]
struct SocketQuery {
    token: String,
}

async fn socket(
    State(state): State<AppState>,
    Path(account): Path<String>,
    Query(query): Query<SocketQuery>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let account = chat_account(&state, &account, &headers).await?;
    let visitor = verify_visitor(&account, &query.token)
        .ok_or_else(|| ApiError::Unauthorized("the visitor token is not valid for this chat".into()))?;
    Ok(ws
        .max_message_size(state.hub.settings.limits.websocket_frame_bytes)
        .max_frame_size(state.hub.settings.limits.websocket_frame_bytes)
        // Chat frames are small and a node holds many idle visitors: a small read buffer (the
        // default is 128 KiB per socket) and writes sent at once.
        .read_buffer_size(VISITOR_READ_BUFFER)
        .write_buffer_size(0)
        .on_upgrade(move |socket| {
            let events = state.visitors.subscribe();
            Visitor {
                state,
                account,
                visitor,
                events,
                handle: None,
                conversation: None,
                last_typing: None,
            }
            .serve(socket)
        }))
}

struct Visitor {
    state: AppState,
    account: ChannelAccount,
    visitor: Uuid,
    /// This chat's events, routed to this socket alone.
    events: Subscription,
    /// The visitor's handle, once it exists (after the first message or an identify).
    handle: Option<HandleId>,
    /// The visitor's current conversation, once there is one.
    conversation: Option<ConversationId>,
    /// When a typing notice last went to the agents: at most one per [`TYPING_EVERY`].
    last_typing: Option<std::time::Instant>,
}

const TYPING_EVERY: std::time::Duration = std::time::Duration::from_secs(2);
/// Read buffer of a visitor socket, in bytes; a larger frame is read in several steps.
const VISITOR_READ_BUFFER: usize = 4096;

fn error_frame(code: &str, message: impl std::fmt::Display) -> Value {
    json!({"type": "error", "code": code, "message": message.to_string()})
}

fn message_frame(i: &Interaction) -> Value {
    json!({"type": "message", "id": i.id, "seq": i.conversation_seq, "conversation_id": i.conversation_id, "direction": i.direction,
           "text": i.text, "at": i.occurred_at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
           "client_id": i.details.get("client_id")})
}

impl Visitor {
    async fn serve(mut self, socket: WebSocket) {
        let (mut outgoing, mut incoming) = socket.split();
        self.refresh_handle().await;
        let conversation = match self.handle {
            Some(handle) => self
                .state
                .hub
                .store
                .conversation_of_handle(self.account.id, handle)
                .await
                .ok()
                .flatten(),
            None => None,
        };
        self.conversation = conversation.map(|c| c.id);
        self.events.follow(self.handle, self.conversation);
        let hello = json!({"type": "hello", "visitor_id": self.visitor, "conversation_id": self.conversation});
        if outgoing.send(Message::Text(hello.to_string().into())).await.is_err() {
            return;
        }
        let closing = super::ws::closing(&self.state);
        tokio::pin!(closing);
        loop {
            let replies: Vec<Value> = tokio::select! {
                () = &mut closing => {
                    let _ = outgoing.send(super::ws::close(close_code::AWAY, "the hub is shutting down")).await;
                    return;
                }
                frame = incoming.next() => match frame {
                    Some(Ok(Message::Text(text))) => self.handle_frame(&text).await,
                    Some(Ok(Message::Close(_))) | None => return,
                    // Over the frame limit, or not WebSocket at all: say so, then hang up.
                    Some(Err(_)) => {
                        let _ = outgoing.send(super::ws::close(close_code::SIZE, "unreadable or oversized frame")).await;
                        return;
                    }
                    Some(Ok(_)) => vec![error_frame("unsupported", "send JSON text frames")],
                },
                routed = self.events.next() => match routed {
                    Routed::Event(HubEvent::InteractionCreated { interaction }) if self.sees(&interaction) => {
                        self.conversation = Some(interaction.conversation_id);
                        vec![message_frame(&interaction)]
                    }
                    Routed::Event(HubEvent::AgentActivity { conversation_id, activity, .. }) if Some(conversation_id) == self.conversation => {
                        let mut frames = vec![json!({"type": "typing", "typing": activity == Activity::Replying})];
                        // An agent opening the conversation has seen what the visitor wrote.
                        if activity == Activity::Viewing {
                            frames.push(json!({"type": "read"}));
                        }
                        frames
                    }
                    Routed::Event(_) => continue,
                    Routed::Resync => vec![json!({"type": "resync"})],
                },
            };
            self.events.follow(self.handle, self.conversation);
            for reply in replies {
                if outgoing.send(Message::Text(reply.to_string().into())).await.is_err() {
                    return;
                }
            }
        }
    }

    /// Whether an interaction belongs to this visitor's chat and is meant for customers' eyes.
    fn sees(&self, i: &Interaction) -> bool {
        i.channel_account_id == self.account.id
            && self.handle.is_some()
            && i.handle_id == self.handle
            && i.direction != Direction::Note
    }

    async fn refresh_handle(&mut self) {
        if self.handle.is_none() {
            self.handle = self
                .state
                .hub
                .store
                .handle(&Handle::Visitor(self.visitor))
                .await
                .ok()
                .flatten()
                .map(|(h, _)| h);
        }
    }

    async fn handle_frame(&mut self, text: &str) -> Vec<Value> {
        let frame = match Frame::parse(text) {
            Ok(frame) => frame,
            Err(e) => return vec![error_frame("invalid_frame", e)],
        };
        match frame {
            Frame::Message { client_id, text } => self.message(client_id, text).await,
            Frame::Resume { after_seq } => self.resume(after_seq).await,
            Frame::Identify { name, email, phone } => self.identify(name, email, phone).await,
            Frame::Read { seq } => {
                if let Some(conversation_id) = self.conversation {
                    match self.state.hub.store.customer_read(conversation_id, seq).await {
                        Ok(true) => self.state.hub.bus.publish(HubEvent::CustomerRead {
                            conversation_id,
                            channel_account_id: self.account.id,
                            seq,
                        }),
                        Ok(false) => {}
                        Err(e) => return vec![error_frame("unavailable", e)],
                    }
                }
                vec![]
            }
            Frame::Typing => {
                let due = self.last_typing.is_none_or(|at| at.elapsed() >= TYPING_EVERY);
                if let (true, Some(conversation_id)) = (due, self.conversation) {
                    self.last_typing = Some(std::time::Instant::now());
                    self.state.hub.bus.publish(HubEvent::CustomerTyping {
                        conversation_id,
                        channel_account_id: self.account.id,
                    });
                }
                vec![]
            }
        }
    }

    async fn message(&mut self, client_id: String, text: String) -> Vec<Value> {
        if client_id.is_empty() || client_id.len() > 100 {
            return vec![error_frame("invalid_client_id", "client_id must be 1 to 100 bytes")];
        }
        if text.trim().is_empty() || text.chars().count() > MAX_TEXT {
            return vec![
                json!({"type": "error", "code": "invalid_text", "client_id": client_id, "message": format!("text must be 1 to {MAX_TEXT} characters")}),
            ];
        }
        if let Err(wait) = self.state.chat_limits.message(self.visitor) {
            let seconds = wait.as_secs_f64().ceil() as u64;
            return vec![json!({
                "type": "error", "code": "rate_limited", "client_id": client_id,
                "retry_after_ms": wait.as_millis() as u64,
                "message": format!("too many messages; send it again in {seconds} s"),
            })];
        }
        let envelope = InboundEnvelope {
            channel_account_id: self.account.id.0,
            channel: ChannelKind::Chat,
            external_id: format!("chat:{}:{client_id}", self.visitor),
            direction: Direction::Inbound,
            contact: Handle::Visitor(self.visitor),
            contact_name: None,
            occurred_at: self.state.hub.clock.now(),
            threading: ThreadingHints::default(),
            content: Content {
                subject: None,
                text: Some(text),
                html: None,
            },
            attachments: vec![],
            details: json!({"client_id": client_id}),
            cursor: None,
            agent_extension: None,
            needs_reply: true,
        };
        match self.state.hub.ingest(&envelope).await {
            Ok(outcome) => {
                self.refresh_handle().await;
                let stored = outcome.interaction;
                self.conversation = Some(stored.conversation_id);
                vec![
                    json!({"type": "ack", "client_id": client_id, "id": stored.id, "seq": stored.conversation_seq, "conversation_id": stored.conversation_id, "duplicate": outcome.duplicate}),
                ]
            }
            Err(e) => {
                tracing::warn!(account = %self.account.id, error = %e, "chat message not stored");
                vec![
                    json!({"type": "error", "code": "not_stored", "client_id": client_id, "message": "the message was not stored; send it again"}),
                ]
            }
        }
    }

    async fn resume(&mut self, after_seq: i64) -> Vec<Value> {
        self.refresh_handle().await;
        let Some(handle) = self.handle else { return vec![] };
        let store = &self.state.hub.store;
        match store.conversation_of_handle(self.account.id, handle).await {
            Ok(Some(conversation)) => match store.conversation_after(conversation.id, after_seq).await {
                Ok(items) => items.iter().map(message_frame).collect(),
                Err(e) => vec![error_frame("unavailable", e)],
            },
            Ok(None) => vec![],
            Err(e) => vec![error_frame("unavailable", e)],
        }
    }

    /// Links the visitor to the contact with the given email or phone: merging the visitor's
    /// own contact into it (a recorded, undoable merge), or adding the handle.
    async fn identify(&mut self, name: Option<String>, email: Option<String>, phone: Option<String>) -> Vec<Value> {
        let region = self.state.hub.settings.contacts.default_region;
        let mut handles = Vec::new();
        if let Some(email) = email.filter(|e| !e.trim().is_empty()) {
            match EmailAddress::parse(&email) {
                Ok(e) => handles.push(Handle::Email(e)),
                Err(e) => return vec![error_frame("invalid_email", e)],
            }
        }
        if let Some(phone) = phone.filter(|p| !p.trim().is_empty()) {
            match PhoneNumber::parse(&phone, region) {
                Ok(p) => handles.push(Handle::Phone(p)),
                Err(e) => return vec![error_frame("invalid_phone", e)],
            }
        }
        match self.link(name.filter(|n| !n.trim().is_empty()), handles).await {
            Ok(contact) => {
                self.refresh_handle().await;
                vec![json!({"type": "identified", "contact_id": contact})]
            }
            Err(e) => vec![error_frame("not_linked", e)],
        }
    }

    async fn link(&self, name: Option<String>, handles: Vec<Handle>) -> Result<ContactId, StoreError> {
        let store = &self.state.hub.store;
        let visitor = Handle::Visitor(self.visitor);
        let mut contact = store.handle(&visitor).await?.map(|(_, c)| c);
        for handle in handles {
            match (contact, store.contact_by_handle(&handle).await?) {
                (Some(mine), Some(known)) if mine != known => {
                    store
                        .merge_contacts(mine, known, &format!("visitor:{}", self.visitor))
                        .await?;
                    self.state.hub.search.wake();
                    contact = Some(known);
                }
                (Some(_), Some(_)) => {}
                (Some(mine), None) => {
                    store
                        .update_contact(
                            mine,
                            ContactPatch {
                                add_handles: vec![handle],
                                ..Default::default()
                            },
                        )
                        .await?;
                }
                (None, Some(known)) => {
                    store
                        .update_contact(
                            known,
                            ContactPatch {
                                add_handles: vec![visitor.clone()],
                                ..Default::default()
                            },
                        )
                        .await?;
                    contact = Some(known);
                }
                (None, None) => contact = Some(store.create_contact(None, &[visitor.clone(), handle]).await?.id),
            }
        }
        let contact = match contact {
            Some(c) => c,
            None => store.create_contact(None, &[visitor]).await?.id,
        };
        if let Some(name) = name
            && store.contact(contact).await?.name.is_none()
        {
            store
                .update_contact(
                    contact,
                    ContactPatch {
                        name: Some(Some(name)),
                        ..Default::default()
                    },
                )
                .await?;
        }
        Ok(contact)
    }
}
