use thiserror::Error;

/// What went wrong talking to a channel's peer.
#[derive(Debug, Error)]
pub enum ConnectorError {
    /// The peer could not be reached or timed out; a later attempt may succeed.
    #[error("transport error: {0}")]
    Transport(String),
    /// The peer answered with a status that says it may accept a retry (429, 5xx).
    #[error("peer answered {status}: {detail}")]
    PeerTemporary { status: u16, detail: String },
    /// The peer refused the message for good (4xx other than 408 and 429).
    #[error("peer refused with {status}: {detail}")]
    PeerRejected { status: u16, detail: String },
    /// The message or the account's configuration cannot be sent as it is.
    #[error("invalid message: {0}")]
    Invalid(String),
}

impl ConnectorError {
    /// Whether sending the same message again later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Transport(_) | Self::PeerTemporary { .. })
    }

    /// Classifies an HTTP status a peer answered with.
    pub fn from_status(status: u16, detail: impl Into<String>) -> Self {
        let detail = detail.into();
        if status == 408 || status == 429 || status >= 500 {
            Self::PeerTemporary { status, detail }
        } else {
            Self::PeerRejected { status, detail }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_timeouts_throttling_and_server_errors_are_retryable() {
        for (status, retryable) in [
            (400, false),
            (401, false),
            (404, false),
            (408, true),
            (429, true),
            (500, true),
            (503, true),
        ] {
            assert_eq!(
                ConnectorError::from_status(status, "x").is_retryable(),
                retryable,
                "status {status}"
            );
        }
        assert!(ConnectorError::Transport("reset".into()).is_retryable());
        assert!(!ConnectorError::Invalid("no url".into()).is_retryable());
    }
}
