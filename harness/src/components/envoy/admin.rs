//! Envoy's admin API.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use serde_json::Value;

use crate::components::{get_json, ComponentError};

#[derive(Clone)]
pub struct Admin {
    base: String,
    http: reqwest::Client,
}

impl Admin {
    pub fn new(addr: SocketAddr) -> Self {
        Admin { base: format!("http://{addr}"), http: crate::http::client() }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// `/config_dump` including ECDS filters.
    pub async fn config_dump(&self) -> Result<Value, ComponentError> {
        self.get_json("/config_dump").await
    }

    /// Counters and gauges whose names match the regex `filter`.
    pub async fn stats(&self, filter: &str) -> Result<BTreeMap<String, u64>, ComponentError> {
        let url =
            reqwest::Url::parse_with_params(&format!("{}/stats", self.base), [("format", "json"), ("filter", filter)])
                .expect("the admin base is a valid URL");
        let dump = get_json(&self.http, url.as_str()).await?;
        Ok(dump["stats"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| Some((s["name"].as_str()?.to_owned(), s["value"].as_u64()?)))
            .collect())
    }

    /// `/memory`: what the allocator holds now, by field (`allocated`,
    /// `heap_size`, ...), unlike the `server.memory_*` gauges, which change
    /// only when stats are flushed.
    pub async fn memory(&self) -> Result<BTreeMap<String, u64>, ComponentError> {
        let memory = self.get_json("/memory").await?;
        let fields = memory.as_object().into_iter().flatten();
        // Envoy writes these 64-bit numbers as strings.
        Ok(fields.filter_map(|(k, v)| Some((k.clone(), v.as_str()?.parse().ok()?))).collect())
    }

    /// Asks Envoy to exit (`POST /quitquitquit`).
    pub async fn quit(&self) -> Result<(), ComponentError> {
        let asked = self.http.post(format!("{}/quitquitquit", self.base)).send().await;
        asked
            .and_then(reqwest::Response::error_for_status)
            .map(drop)
            .map_err(|source| ComponentError::Http { what: "asking Envoy to exit".into(), source })
    }

    async fn get_json(&self, path: &str) -> Result<Value, ComponentError> {
        get_json(&self.http, &format!("{}{path}", self.base)).await
    }
}
