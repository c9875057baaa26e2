//! The webhook runs' HTTP/1.1 client: one kept-alive connection per client and node, on which
//! a client sends its prepared requests one after the other, as a provider's sender does.
//!
//! Why not reqwest, as everywhere else in the benchmark: the client shares this machine's two
//! cores with the hub it measures, and reqwest parsed the URL, went through its connection
//! pool and a dispatch task for every request. Measured on the webhook run at 128 clients, the
//! client took 17 % of the CPU samples; the hub's own work is what the table is about.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use bytes::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;

/// A connection to one server, opened on first use and again after a failure.
pub struct Connection {
    /// `host:port`, for connecting and for the `Host` header.
    authority: String,
    sender: Option<SendRequest<Body>>,
    timeout: Duration,
}

impl Connection {
    /// A connection to the server at `base` (`http://host:port`), not opened yet.
    pub fn to(base: &str, timeout: Duration) -> Self {
        let authority = base.trim_start_matches("http://").trim_end_matches('/').to_owned();
        Self {
            authority,
            sender: None,
            timeout,
        }
    }

    /// A `POST` of `body` to `path` on this connection's server, with `headers`.
    pub fn post(&self, path: &str, headers: &[(&'static str, &str)], body: Bytes) -> Request<Body> {
        let mut request = Request::post(path).header(header::HOST, &self.authority);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.body(Body::from(body)).expect("a request of valid parts")
    }

    /// Sends `request` and reads the whole answer; `None` if the connection failed or the
    /// answer took longer than the timeout (the connection is then opened again next time).
    pub async fn send(&mut self, request: Request<Body>) -> Option<(StatusCode, Bytes)> {
        let answer = tokio::time::timeout(self.timeout, self.exchange(request)).await;
        match answer {
            Ok(Some(answer)) => Some(answer),
            _ => {
                self.sender = None;
                None
            }
        }
    }

    async fn exchange(&mut self, request: Request<Body>) -> Option<(StatusCode, Bytes)> {
        // Closed by the server since the last request (a keep-alive timeout): open another.
        if self.sender.as_ref().is_some_and(SendRequest::is_closed) {
            self.sender = None;
        }
        if self.sender.is_none() {
            self.sender = Some(open(&self.authority).await?);
        }
        let sender = self.sender.as_mut()?;
        sender.ready().await.ok()?;
        let response = sender.send_request(request).await.ok()?;
        let status = response.status();
        let body = axum::body::to_bytes(Body::new(response.into_body()), usize::MAX)
            .await
            .ok()?;
        Some((status, body))
    }
}

/// A new HTTP/1.1 connection to `authority`, driven by a task of its own.
async fn open(authority: &str) -> Option<SendRequest<Body>> {
    let stream = tokio::net::TcpStream::connect(authority).await.ok()?;
    stream.set_nodelay(true).ok()?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.ok()?;
    tokio::spawn(async move {
        // Ends when the sender is dropped or the server closes the connection.
        let _ = connection.await;
    });
    Some(sender)
}
