//! `tcp-stamp`: a proxy-wasm network filter for tests. `{"name": NAME}`
//! prefixes `[NAME]` to every chunk the upstream sends back on a TCP
//! connection, so a client of an echo backend reads which filters ran. The
//! way back runs the chain in reverse, so the first filter's stamp ends up
//! outermost: `[a][b]ping` through the chain `a, b`.
//!
//! A connection that opens with HTTP (an HTTP/1 request line or the HTTP/2
//! preface) is left alone, so that on a listener whose chain ends in the
//! HTTP connection manager the filter is there but HTTP still works.
//!
//! The logic lives here as plain functions; `filter` is the proxy-wasm glue.

use serde::Deserialize;

mod filter;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub name: String,
}

pub fn parse_configuration(bytes: &[u8]) -> Result<Config, serde_json::Error> {
    serde_json::from_slice(bytes)
}

/// What the filter does with the rest of a connection, from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connection {
    Http,
    Stamped,
}

const HTTP2_PREFACE: &[u8] = b"PRI * HTTP/2.0";
const METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"];

/// A connection's kind from the first bytes the client sent.
pub fn classify(first: &[u8]) -> Connection {
    let http1 = METHODS.iter().any(|m| first.starts_with(m.as_bytes()) && first.get(m.len()) == Some(&b' '));
    if http1 || first.starts_with(HTTP2_PREFACE) {
        Connection::Http
    } else {
        Connection::Stamped
    }
}

/// The chunk as the client gets it: `[name]` before it.
pub fn stamp(name: &str, chunk: &[u8]) -> Vec<u8> {
    let mut stamped = format!("[{name}]").into_bytes();
    stamped.extend_from_slice(chunk);
    stamped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_connections_are_told_apart() {
        assert_eq!(classify(b"GET / HTTP/1.1\r\n"), Connection::Http);
        assert_eq!(classify(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), Connection::Http);
        assert_eq!(classify(b"GETTING"), Connection::Stamped);
        assert_eq!(classify(b"ping\n"), Connection::Stamped);
    }

    #[test]
    fn a_chunk_is_stamped_in_front() {
        assert_eq!(stamp("a", b"ping"), b"[a]ping");
    }

    #[test]
    fn configuration_needs_a_name() {
        assert_eq!(parse_configuration(br#"{"name": "a"}"#).unwrap().name, "a");
        assert!(parse_configuration(b"{}").is_err());
        assert!(parse_configuration(br#"{"name": "a", "other": 1}"#).is_err());
    }
}
