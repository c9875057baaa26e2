//! Web chat's wire format: the frames a visitor's widget sends over its socket.

/// What a visitor's widget sends over its socket, one JSON text frame each.
#[derive(Debug, serde::Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum VisitorFrame {
    Message {
        client_id: String,
        text: String,
    },
    Resume {
        after_seq: i64,
    },
    Identify {
        name: Option<String>,
        email: Option<String>,
        phone: Option<String>,
    },
    /// The visitor is typing; agents on the conversation see it.
    Typing,
    /// The visitor has seen the conversation up to this sequence number (a read receipt).
    Read {
        seq: i64,
    },
}

impl VisitorFrame {
    /// Reads one frame; anything else is an error naming what is wrong.
    pub fn parse(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }
}
