//! Which inboxes a caller may see. Admins and supervisors see every inbox; an agent sees the
//! inboxes they belong to (`agent_inboxes`), and everything in them: conversations, their
//! interactions and attachments, and the contacts who wrote there. Anything outside is
//! answered as "not found", so ids cannot be probed.

use std::collections::HashSet;
use std::sync::Arc;

use crate::domain::ChannelAccountId;

#[derive(Debug, Clone)]
pub enum Scope {
    All,
    Inboxes(Arc<HashSet<ChannelAccountId>>),
}

impl Scope {
    pub fn allows(&self, account: ChannelAccountId) -> bool {
        match self {
            Self::All => true,
            Self::Inboxes(inboxes) => inboxes.contains(&account),
        }
    }

    /// The inboxes to filter by, or `None` for every inbox.
    pub fn accounts(&self) -> Option<Vec<ChannelAccountId>> {
        match self {
            Self::All => None,
            Self::Inboxes(inboxes) => {
                let mut accounts: Vec<ChannelAccountId> = inboxes.iter().copied().collect();
                accounts.sort();
                Some(accounts)
            }
        }
    }
}
