//! HTTP/1.1 over a Unix domain socket, one connection per request: local
//! APIs are cheap to connect to and this keeps no state between calls.

use std::path::Path;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;

#[derive(Debug, thiserror::Error)]
pub enum UdsError {
    #[error("cannot connect to {path}: {source}")]
    Connect {
        path: String,
        source: std::io::Error,
    },
    #[error("HTTP error talking to {path}: {source}")]
    Http { path: String, source: hyper::Error },
}

impl UdsError {
    /// The I/O error behind a failed connect, to tell "not running" from "not allowed".
    pub fn connect_error_kind(&self) -> Option<std::io::ErrorKind> {
        match self {
            UdsError::Connect { source, .. } => Some(source.kind()),
            UdsError::Http { .. } => None,
        }
    }
}

/// Sends one request and returns the response with its body still streaming.
pub async fn send(
    socket: &Path,
    method: Method,
    path: &str,
    json_body: Option<Vec<u8>>,
) -> Result<Response<Incoming>, UdsError> {
    let where_ = || socket.display().to_string();
    let stream = UnixStream::connect(socket)
        .await
        .map_err(|source| UdsError::Connect {
            path: where_(),
            source,
        })?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|source| UdsError::Http {
            path: where_(),
            source,
        })?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let mut builder = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "localhost");
    if json_body.is_some() {
        builder = builder.header("content-type", "application/json");
    }
    builder = builder.header("accept", "application/json");
    let request = builder
        .body(Full::new(Bytes::from(json_body.unwrap_or_default())))
        .expect("request parts are valid");
    sender
        .send_request(request)
        .await
        .map_err(|source| UdsError::Http {
            path: where_(),
            source,
        })
}

/// Sends one request and collects the whole response body.
pub async fn request(
    socket: &Path,
    method: Method,
    path: &str,
    json_body: Option<Vec<u8>>,
) -> Result<(StatusCode, Bytes), UdsError> {
    let response = send(socket, method, path, json_body).await?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|source| UdsError::Http {
            path: socket.display().to_string(),
            source,
        })?
        .to_bytes();
    Ok((status, body))
}
