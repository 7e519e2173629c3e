//! proxy-wasm glue: reads the configuration and the stream's inputs, applies
//! what `StampConfig` computes.

use std::rc::Rc;

use log::{debug, error, info};
use plugproof_rules::RuleMatcher;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};

use crate::{parse_configuration, StampConfig, VERSION};

proxy_wasm::main! {{
    // Envoy filters by its own `wasm` log level; send everything.
    proxy_wasm::set_log_level(LogLevel::Debug);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root::default()) });
}}

#[derive(Default)]
struct Root {
    /// None until a configuration is accepted.
    matcher: Option<Rc<RuleMatcher<Rc<StampConfig>>>>,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        let bytes = self.get_plugin_configuration().unwrap_or_default();
        match parse_configuration(&bytes) {
            Ok(matcher) => {
                info!(
                    "stamp {VERSION}: rules {:?}, global config: {}",
                    matcher.categories(),
                    matcher.has_global()
                );
                self.matcher = Some(Rc::new(matcher));
                true
            }
            Err(e) => {
                // Returning false makes Envoy reject the configuration.
                error!("stamp {VERSION}: rejecting configuration: {e}");
                false
            }
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        // The SDK panics on None, so a stream always gets a context.
        Some(Box::new(Stream {
            matcher: self.matcher.clone(),
            config: None,
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Stream {
    matcher: Option<Rc<RuleMatcher<Rc<StampConfig>>>>,
    /// The config selected on the request path, for the response path.
    config: Option<Rc<StampConfig>>,
}

impl Stream {
    /// A property as a string, "" when Envoy has none (as the Go SDK reads it).
    /// The Go SDK reads top-level `route_name` and `cluster_name`, which
    /// Higress's Envoy serves; upstream Envoy (1.40) answers NotFound there
    /// and has them only as `xds.route_name` and `xds.cluster_name`.
    fn property(&self, name: &str) -> String {
        self.get_property(vec![name])
            .or_else(|| self.get_property(vec!["xds", name]))
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default()
    }
}

impl Context for Stream {}

impl HttpContext for Stream {
    fn on_http_request_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        let Some(matcher) = &self.matcher else {
            return Action::Continue;
        };
        let authority = self.get_http_request_header(":authority");
        let route_name = self.property("route_name");
        let cluster_name = self.property("cluster_name");
        let selected = matcher.select(authority.as_deref(), &route_name, &cluster_name);
        debug!(
            "stamp: authority {authority:?}, route_name {route_name:?}, cluster_name {cluster_name:?}: {:?}",
            selected.map(|s| s.source)
        );
        let Some(selected) = selected else {
            return Action::Continue;
        };
        let config = Rc::clone(selected.config);
        for (name, value) in &config.request_headers {
            self.set_http_request_header(name, Some(value));
        }
        if let Some(reply) = config.local_reply() {
            // Like Higress's custom-response: answer and stop the request.
            // `self.config` stays None, so our own reply is not stamped twice.
            self.send_http_response(reply.status, reply.headers, Some(reply.body.as_bytes()));
            return Action::Pause;
        }
        self.config = Some(config);
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        if let Some(config) = &self.config {
            for (name, value) in config.response_headers() {
                self.add_http_response_header(name, value);
            }
        }
        Action::Continue
    }
}
