//! The offline fallback of web chat: agents' replies a visitor has not read within the chat
//! account's `offline_after_seconds` go to the visitor's email address, from the account's
//! `offline_email_account_id` inbox, each reply once.
//!
//! "Not read" is the read receipt: a reply past the conversation's `customer_read_seq`. That
//! works whichever node the visitor was connected to, and a visitor who reads the reply in time
//! gets no email. The unread replies of one chat go in one email, on an email conversation kept
//! per chat (thread key `chat:<conversation>`), so the visitor's answer by email threads there,
//! in the same contact's timeline. A visitor without an email address is skipped for good.

use tracing::warn;

use crate::chat::ChatSettings;
use crate::domain::*;
use crate::hub::Hub;
use crate::reply::{Author, Draft, DraftKind, WriteError};
use crate::store::{self, PlacementRequest, StoreError, Threading};

/// Sends what is due on every chat account with a fallback inbox; returns how many emails.
pub async fn send_due(hub: &Hub) -> Result<usize, WriteError> {
    let mut sent = 0;
    for account in hub.store.channel_accounts().await? {
        if account.kind != ChannelKind::Chat {
            continue;
        }
        let Ok(settings) = ChatSettings::of(&account) else {
            continue;
        };
        let Some(inbox) = settings.offline_email_account_id else {
            continue;
        };
        let older_than = hub.clock.now() - time::Duration::seconds(settings.offline_after_seconds as i64);
        let unread = hub.store.unread_chat_replies(account.id, older_than).await?;
        let mut by_chat: Vec<(ConversationId, Vec<store::UnreadReply>)> = Vec::new();
        for reply in unread {
            match by_chat.last_mut() {
                Some((chat, replies)) if *chat == reply.conversation_id => replies.push(reply),
                _ => by_chat.push((reply.conversation_id, vec![reply])),
            }
        }
        for (chat, replies) in by_chat {
            match send_one(hub, &account, inbox, chat, &replies).await {
                Ok(true) => sent += 1,
                Ok(false) => {}
                Err(error) => warn!(%chat, %error, "chat replies not sent on by email; will retry"),
            }
        }
    }
    Ok(sent)
}

/// Emails one chat's unread replies; false when the visitor left no email address.
async fn send_one(
    hub: &Hub,
    chat_account: &ChannelAccount,
    inbox: ChannelAccountId,
    chat: ConversationId,
    replies: &[store::UnreadReply],
) -> Result<bool, WriteError> {
    let contact = replies[0].contact_id;
    let mut tx = hub.store.begin().await?;
    let ids: Vec<InteractionId> = replies.iter().map(|r| r.interaction_id).collect();
    let Some(handle) = store::email_handle_in(&mut tx, contact).await? else {
        store::record_chat_fallbacks_in(&mut tx, &ids, None, hub.clock.now()).await?;
        tx.commit().await?;
        return Ok(false);
    };
    let account = store::account_in(&mut tx, inbox).await?;
    if account.kind != ChannelKind::Email {
        return Err(StoreError::Invalid {
            field: "settings.offline_email_account_id".into(),
            reason: format!("{inbox} is not an email inbox"),
        }
        .into());
    }
    let subject = format!("{}: your chat", chat_account.name);
    let key = format!("chat:{chat}");
    let (placement, _) = store::place(
        &mut tx,
        PlacementRequest {
            contact,
            handle,
            account: &account,
            threading: Threading::Key(&key),
            subject: Some(&subject),
            direction: Direction::Outbound,
            occurred_at: hub.clock.now(),
            reopen_window: time::Duration::hours(hub.settings.conversations.reopen_window_hours as i64),
            needs_reply: false,
            automation: false,
        },
    )
    .await?;
    let mut text: Vec<String> = replies.iter().map(|r| r.text.clone()).collect();
    text.push(format!(
        "--\nReplies to your chat with {} that you have not seen yet. Answer this email to go on.",
        chat_account.name
    ));
    let (email, queued) = hub
        .write_in(
            &mut tx,
            placement.id(),
            Some(Author::Trigger("chat offline fallback")),
            DraftKind::Reply,
            Draft {
                text: text.join("\n\n"),
                html: None,
                subject: Some(subject),
            },
        )
        .await?;
    store::record_chat_fallbacks_in(&mut tx, &ids, Some(email.id), hub.clock.now()).await?;
    tx.commit().await?;
    hub.written(&email, queued);
    Ok(true)
}
