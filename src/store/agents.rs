//! Agents, their browser sessions and API tokens. Secrets are stored only as hashes.

use sqlx::Any;
use sqlx::any::AnyRow;
use time::OffsetDateTime;

use super::rows::RowExt;
use super::{Db, Store, StoreError, Tx, sql};
use crate::domain::*;

#[derive(Debug)]
pub struct NewAgent {
    pub email: EmailAddress,
    pub name: String,
    pub role: Role,
    /// An argon2id PHC string.
    pub password_hash: Option<String>,
    /// The agent's phone extension: calls answered there are linked to them.
    pub extension: Option<String>,
}

#[derive(Debug, Clone)]
pub struct SessionRecord {
    pub agent: Agent,
    pub csrf_token: String,
    pub expires_at: OffsetDateTime,
}

#[derive(Debug, Clone)]
pub struct TokenRecord {
    pub id: ApiTokenId,
    pub name: String,
    pub role: Role,
    pub created_by: AgentId,
}

impl Store {
    pub async fn count_agents(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM agents")
            .fetch_one(self.reader())
            .await?)
    }

    pub async fn create_agent(&self, new: NewAgent) -> Result<Agent, StoreError> {
        let id = AgentId::new();
        let mut tx = self.begin().await?;
        let done = sqlx::query(
            "INSERT INTO agents (id, email, name, role, password_hash, created_at, extension) VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (email) DO NOTHING",
        )
        .bind(id.to_string())
        .bind(new.email.as_str().to_owned())
        .bind(new.name)
        .bind(new.role.as_str())
        .bind(new.password_hash)
        .bind(to_micros(now()))
        .bind(new.extension.clone())
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from)
        .map_err(|e| match (e.is_unique_violation(), &new.extension) {
            (true, Some(ext)) => StoreError::Conflict(format!("extension {ext} belongs to another agent")),
            (_, _) => e,
        })?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict(format!(
                "an agent with email {} exists",
                new.email
            )));
        }
        tx.commit().await?;
        self.agent(id).await
    }

    pub async fn agent(&self, id: AgentId) -> Result<Agent, StoreError> {
        let row = sqlx::query("SELECT * FROM agents WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(self.reader())
            .await?
            .ok_or(StoreError::NotFound("agent"))?;
        agent_from_row(&row)
    }

    /// The agent with this email and their password hash, for login.
    pub async fn agent_credentials(&self, email: &EmailAddress) -> Result<Option<(Agent, Option<String>)>, StoreError> {
        let row = sqlx::query("SELECT * FROM agents WHERE email = $1")
            .bind(email.as_str().to_owned())
            .fetch_optional(self.reader())
            .await?;
        row.map(|r| Ok((agent_from_row(&r)?, r.opt_text("password_hash")?)))
            .transpose()
    }

    pub async fn create_session(
        &self,
        agent: AgentId,
        token_hash: &str,
        csrf_token: &str,
        expires_at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        sqlx::query("INSERT INTO sessions (token_hash, agent_id, csrf_token, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(token_hash.to_owned())
            .bind(agent.to_string())
            .bind(csrf_token.to_owned())
            .bind(to_micros(now()))
            .bind(to_micros(expires_at))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The live session with this token hash; expired sessions are not returned.
    pub async fn session(&self, token_hash: &str) -> Result<Option<SessionRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT a.*, s.csrf_token, s.expires_at FROM sessions s JOIN agents a ON a.id = s.agent_id
             WHERE s.token_hash = $1 AND s.expires_at > $2",
        )
        .bind(token_hash.to_owned())
        .bind(to_micros(now()))
        .fetch_optional(self.reader())
        .await?;
        row.map(|r| {
            Ok(SessionRecord {
                agent: agent_from_row(&r)?,
                csrf_token: r.text("csrf_token")?,
                expires_at: r.time("expires_at")?,
            })
        })
        .transpose()
    }

    /// Sets an agent's password and ends every session of theirs except `keep` (the digest of
    /// the session that changed it); returns how many ended.
    pub async fn set_password(&self, id: AgentId, hash: &str, keep: Option<&str>) -> Result<u64, StoreError> {
        let mut tx = self.begin().await?;
        let done = sqlx::query("UPDATE agents SET password_hash = $1 WHERE id = $2")
            .bind(hash.to_owned())
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("agent"));
        }
        let ended = sqlx::query("DELETE FROM sessions WHERE agent_id = $1 AND token_hash <> $2")
            .bind(id.to_string())
            .bind(keep.unwrap_or("").to_owned())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        super::events::audit(
            &mut tx,
            &format!("agent:{id}"),
            "password_changed",
            &format!("agent:{id}"),
            serde_json::json!({"sessions_ended": ended}),
        )
        .await?;
        tx.commit().await?;
        Ok(ended)
    }

    /// Whether a session (by digest) is still live.
    pub async fn session_live(&self, token_hash: &str) -> Result<bool, StoreError> {
        Ok(self.session(token_hash).await?.is_some())
    }

    pub async fn delete_session(&self, token_hash: &str) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(token_hash.to_owned())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn create_api_token(
        &self,
        name: &str,
        role: Role,
        created_by: AgentId,
        token_hash: &str,
    ) -> Result<ApiTokenId, StoreError> {
        let id = ApiTokenId::new();
        let mut tx = self.begin().await?;
        sqlx::query("INSERT INTO api_tokens (id, name, token_hash, role, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(id.to_string())
            .bind(name.to_owned())
            .bind(token_hash.to_owned())
            .bind(role.as_str())
            .bind(created_by.to_string())
            .bind(to_micros(now()))
            .execute(&mut *tx)
            .await?;
        super::events::audit(
            &mut tx,
            &created_by.to_string(),
            "api_token.create",
            &id.to_string(),
            serde_json::json!({"role": role, "name": name}),
        )
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// The unrevoked token with this hash.
    pub async fn api_token(&self, token_hash: &str) -> Result<Option<TokenRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT id, name, role, created_by FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL",
        )
        .bind(token_hash.to_owned())
        .fetch_optional(self.reader())
        .await?;
        row.map(|r| {
            Ok(TokenRecord {
                id: r.parsed("id")?,
                name: r.text("name")?,
                role: r.parsed("role")?,
                created_by: r.parsed("created_by")?,
            })
        })
        .transpose()
    }
}

pub(crate) async fn agent_in(tx: &mut Tx<'_>, id: AgentId) -> Result<(), StoreError> {
    sqlx::query_scalar::<Any, String>("SELECT id FROM agents WHERE id = $1")
        .bind(id.to_string())
        .fetch_optional(&mut **tx)
        .await?
        .map(|_| ())
        .ok_or(StoreError::NotFound("agent"))
}

fn agent_from_row(row: &AnyRow) -> Result<Agent, StoreError> {
    Ok(Agent {
        id: row.parsed("id")?,
        email: row.text("email")?,
        name: row.text("name")?,
        role: row.parsed("role")?,
        extension: row.opt_text("extension")?,
        presence: row.parsed("presence")?,
    })
}

/// The agent at a phone extension, if one is.
pub(crate) async fn agent_by_extension_in(tx: &mut impl Db, extension: &str) -> Result<Option<AgentId>, StoreError> {
    sql("SELECT id FROM agents WHERE extension = $1")
        .bind(extension.to_owned())
        .fetch_optional(tx)
        .await?
        .map(|row| row.parsed("id"))
        .transpose()
}

impl Store {
    /// The agent at a phone extension, if any.
    pub async fn agent_by_extension(&self, extension: &str) -> Result<Option<AgentId>, StoreError> {
        sqlx::query_scalar::<Any, String>("SELECT id FROM agents WHERE extension = $1")
            .bind(extension.to_owned())
            .fetch_optional(self.reader())
            .await?
            .map(|raw| super::parse_stored("agent id", &raw))
            .transpose()
    }
}

impl Store {
    /// Sets an agent's presence; returns the agent as now stored.
    pub async fn set_presence(&self, id: AgentId, presence: Presence) -> Result<Agent, StoreError> {
        let mut tx = self.begin().await?;
        sqlx::query("UPDATE agents SET presence = $1 WHERE id = $2")
            .bind(presence.as_str())
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.agent(id).await
    }

    /// Every agent, by name.
    pub async fn agents(&self) -> Result<Vec<Agent>, StoreError> {
        sqlx::query("SELECT * FROM agents ORDER BY name, id")
            .fetch_all(self.reader())
            .await?
            .iter()
            .map(agent_from_row)
            .collect()
    }
}

impl Store {
    /// The inboxes an agent belongs to.
    pub async fn agent_inbox_ids(&self, agent: AgentId) -> Result<Vec<ChannelAccountId>, StoreError> {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT channel_account_id FROM agent_inboxes WHERE agent_id = $1 ORDER BY channel_account_id",
        )
        .bind(agent.to_string())
        .fetch_all(self.reader())
        .await?;
        ids.iter()
            .map(|id| super::parse_stored("channel account id", id))
            .collect()
    }

    /// Replaces the inboxes an agent belongs to; an unknown inbox is `NotFound("channel account")`.
    pub async fn set_agent_inboxes(
        &self,
        agent: AgentId,
        inboxes: &[ChannelAccountId],
        actor: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        agent_in(&mut tx, agent).await?;
        sqlx::query("DELETE FROM agent_inboxes WHERE agent_id = $1")
            .bind(agent.to_string())
            .execute(&mut *tx)
            .await?;
        for inbox in inboxes {
            super::account_in(&mut tx, *inbox).await?;
            sqlx::query(
                "INSERT INTO agent_inboxes (agent_id, channel_account_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            )
            .bind(agent.to_string())
            .bind(inbox.to_string())
            .execute(&mut *tx)
            .await?;
        }
        super::events::audit(
            &mut tx,
            actor,
            "agent.inboxes",
            &agent.to_string(),
            serde_json::json!({"inboxes": inboxes}),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
