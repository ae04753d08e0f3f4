//! A blocking client for permledger's HTTP API, typed by `permledger_api`'s endpoints: the CLI's
//! `--server` mode, the demo and `permledger scenario run --server` call the server through it.
//!
//! `Client::call::<E>(path, query, body)` builds the request from endpoint `E`'s method, path
//! template and types, and reads the answer as `E::Answer`, or a refusal as the API's
//! `ErrorBody`. Connections are kept alive between calls (ureq's pool); `https://` servers are
//! reached with rustls, trusting Mozilla's roots or a certificate given with `--ca-cert`.

mod sse;

pub use sse::{Events, Message};

use std::path::Path;
use std::time::Duration;

use permledger_api::{path, Endpoint, ErrorBody};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// How long a request may take as a whole; the audit export of a large org is the longest.
pub const TIMEOUT: Duration = Duration::from_secs(120);
/// How long connecting may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("server `{0}` is not an http:// or https:// address")]
    NotHttp(String),
    #[error("cannot read the certificate `{path}`: {reason}")]
    Certificate { path: String, reason: String },
    #[error("talking to `{base}` failed: {source}")]
    Transport {
        base: String,
        #[source]
        source: ureq::Error,
    },
    #[error("the server's answer to {what} does not read as the contract says: {reason}")]
    Malformed { what: String, reason: String },
    #[error("the request cannot be written: {0}")]
    Request(String),
    #[error("the event stream from `{base}` broke: {reason}")]
    Stream { base: String, reason: String },
}

/// A refusal: the status and the API's error body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub error: ErrorBody,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status, self.error.code, self.error.message
        )
    }
}

/// An answer of the server: what the endpoint answers, or a refusal.
pub type Reply<A> = Result<A, Refusal>;

/// A client of one server (or one sandbox of it: a base with a path prefix).
#[derive(Clone)]
pub struct Client {
    agent: ureq::Agent,
    base: String,
    token: Option<String>,
    /// Sent with every request besides the token.
    headers: Vec<(String, String)>,
}

impl Client {
    /// `base` is `http(s)://HOST:PORT`, optionally with a path prefix
    /// (`http://HOST:PORT/sandboxes/ID`). `ca_cert`, a PEM file, is trusted besides (instead
    /// of) the usual roots: a server with a self-signed certificate.
    pub fn new(
        base: &str,
        token: Option<&str>,
        ca_cert: Option<&Path>,
    ) -> Result<Client, ClientError> {
        let base = base.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(ClientError::NotHttp(base));
        }
        let mut config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(TIMEOUT))
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .max_idle_connections_per_host(4);
        if let Some(file) = ca_cert {
            config = config.tls_config(
                ureq::tls::TlsConfig::builder()
                    .root_certs(ureq::tls::RootCerts::new_with_certs(&certificates(file)?))
                    .build(),
            );
        }
        Ok(Client {
            agent: config.build().into(),
            base,
            token: token.map(str::to_string),
            headers: Vec::new(),
        })
    }

    /// The same server and token, with a path prefix added to the base (a sandbox's API).
    pub fn under(&self, prefix: &str) -> Client {
        Client {
            agent: self.agent.clone(),
            base: format!("{}{}", self.base, prefix.trim_end_matches('/')),
            token: self.token.clone(),
            headers: self.headers.clone(),
        }
    }

    /// The same server and connections, with another token (a server forwarding its caller's).
    pub fn with_token(&self, token: Option<&str>) -> Client {
        Client {
            token: token.map(str::to_string),
            ..self.clone()
        }
    }

    /// Sends `name: value` with every request besides the token.
    pub fn with_header(mut self, name: &str, value: &str) -> Client {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// Calls endpoint `E` and reads its JSON answer.
    pub fn call<E: Endpoint>(
        &self,
        args: &E::Path,
        query: &E::Query,
        body: &E::Body,
    ) -> Result<Reply<E::Answer>, ClientError> {
        self.call_with::<E, E::Answer>(args, query, body)
    }

    /// Calls endpoint `E` with a body of another type than the contract's (a client forwarding
    /// JSON it did not parse itself, such as a scenario file's command), reading the answer as `A`.
    pub fn call_with<E: Endpoint, A: DeserializeOwned>(
        &self,
        args: &E::Path,
        query: &E::Query,
        body: &impl Serialize,
    ) -> Result<Reply<A>, ClientError> {
        let what = format!("{} {}", E::METHOD.as_str(), E::PATH);
        let (status, text) = self.send::<E>(args, query, body)?;
        if !(200..300).contains(&status) {
            return Ok(Err(refusal(status, &text, &what)?));
        }
        // An answer without a body (204) reads as JSON null, which `()` accepts.
        let text = if text.trim().is_empty() {
            "null"
        } else {
            &text
        };
        serde_json::from_str(text)
            .map(Ok)
            .map_err(|e| ClientError::Malformed {
                what,
                reason: e.to_string(),
            })
    }

    /// Calls endpoint `E` and answers its body as text (exports, metrics).
    pub fn text<E: Endpoint>(
        &self,
        args: &E::Path,
        query: &E::Query,
        body: &E::Body,
    ) -> Result<Reply<String>, ClientError> {
        let what = format!("{} {}", E::METHOD.as_str(), E::PATH);
        let (status, text) = self.send::<E>(args, query, body)?;
        if (200..300).contains(&status) {
            Ok(Ok(text))
        } else {
            Ok(Err(refusal(status, &text, &what)?))
        }
    }

    fn send<E: Endpoint>(
        &self,
        args: &E::Path,
        query: &E::Query,
        body: &impl Serialize,
    ) -> Result<(u16, String), ClientError> {
        let request = self.request::<E>(args, query, body, &[])?;
        let mut response = self.agent.run(request).map_err(|e| self.transport(e))?;
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .with_config()
            .limit(u64::MAX)
            .read_to_string()
            .map_err(|e| self.transport(e))?;
        Ok((status, text))
    }

    /// Opens endpoint `E`'s Server-Sent Events (the feed, the records), resuming after
    /// `last_event_id` when given. The stream has no time limit; the server's keep-alive
    /// comments are skipped.
    pub fn events<E: Endpoint>(
        &self,
        args: &E::Path,
        query: &E::Query,
        last_event_id: Option<u64>,
    ) -> Result<Reply<Events>, ClientError> {
        let what = format!("{} {}", E::METHOD.as_str(), E::PATH);
        let resume = last_event_id.map(|id| ("Last-Event-ID", id.to_string()));
        let mut headers = vec![("Accept", "text/event-stream".to_string())];
        headers.extend(resume);
        let request = self.request::<E>(args, query, &(), &headers)?;
        let request = self
            .agent
            .configure_request(request)
            .timeout_global(None)
            .timeout_recv_body(None)
            .build();
        let mut response = self.agent.run(request).map_err(|e| self.transport(e))?;
        let status = response.status().as_u16();
        if !(200..300).contains(&status) {
            let text = response
                .body_mut()
                .read_to_string()
                .map_err(|e| self.transport(e))?;
            return Ok(Err(refusal(status, &text, &what)?));
        }
        Ok(Ok(Events::new(
            response.into_body().into_reader(),
            self.base.clone(),
        )))
    }

    fn request<E: Endpoint>(
        &self,
        args: &E::Path,
        query: &E::Query,
        body: &impl Serialize,
        extra: &[(&str, String)],
    ) -> Result<ureq::http::Request<Vec<u8>>, ClientError> {
        let query =
            serde_urlencoded::to_string(query).map_err(|e| ClientError::Request(e.to_string()))?;
        let mut url = format!("{}{}", self.base, path::<E>(args));
        if !query.is_empty() {
            url = format!("{url}?{query}");
        }
        let mut request = ureq::http::Request::builder()
            .method(E::METHOD.as_str())
            .uri(&url);
        if let Some(token) = &self.token {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        for (name, value) in extra {
            request = request.header(*name, value);
        }
        let payload = if E::METHOD.has_body() {
            request = request.header("Content-Type", "application/json");
            serde_json::to_vec(body).map_err(|e| ClientError::Request(e.to_string()))?
        } else {
            Vec::new()
        };
        request
            .body(payload)
            .map_err(|e| ClientError::Request(e.to_string()))
    }

    fn transport(&self, source: ureq::Error) -> ClientError {
        ClientError::Transport {
            base: self.base.clone(),
            source,
        }
    }
}

fn refusal(status: u16, text: &str, what: &str) -> Result<Refusal, ClientError> {
    serde_json::from_str(text)
        .map(|error| Refusal { status, error })
        .map_err(|_| ClientError::Malformed {
            what: what.to_string(),
            reason: format!("status {status} came without the error body: {text}"),
        })
}

/// The certificates of a PEM file.
fn certificates(file: &Path) -> Result<Vec<ureq::tls::Certificate<'static>>, ClientError> {
    let err = |reason: String| ClientError::Certificate {
        path: file.display().to_string(),
        reason,
    };
    let pem = std::fs::read(file).map_err(|e| err(e.to_string()))?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        if let ureq::tls::PemItem::Certificate(c) = item.map_err(|e| err(e.to_string()))? {
            certs.push(c);
        }
    }
    if certs.is_empty() {
        return Err(err("it holds no PEM certificate".to_string()));
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn only_http_and_https_addresses_are_taken() {
        assert!(matches!(
            Client::new("ftp://example.test", None, None),
            Err(ClientError::NotHttp(_))
        ));
        assert!(Client::new("https://example.test/", None, None).is_ok());
        let c = Client::new("http://127.0.0.1:1/", None, None).unwrap();
        assert_eq!(
            c.under("/sandboxes/x/").base(),
            "http://127.0.0.1:1/sandboxes/x"
        );
    }

    #[test]
    fn a_file_without_certificates_is_named() {
        let dir = std::env::temp_dir().join(format!("plc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("empty.pem");
        std::fs::write(&file, "not a certificate").unwrap();
        let e = Client::new("https://x.test", None, Some(&file))
            .err()
            .unwrap();
        assert!(e.to_string().contains("holds no PEM certificate"), "{e}");
    }
}
