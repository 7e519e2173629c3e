//! proxy-wasm glue: applies what the selected `StampConfig` computes.

use std::rc::Rc;

use log::error;
use plugproof_glue::{environment, Environment, Rules};
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;

use crate::{parse_configuration, StampConfig, UNSET, VERSION};

plugproof_glue::plugin!(if VERSION == "v2" { "stamp v2" } else { "stamp v1" }, parse_configuration, |rules| Box::new(
    Stream { rules, config: None }
));

struct Stream {
    rules: Rules<StampConfig>,
    /// The config selected on the request path, for the response path.
    config: Option<Rc<StampConfig>>,
}

impl Context for Stream {}

impl HttpContext for Stream {
    fn on_http_request_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        let Some(config) = self.rules.select(self) else {
            return Action::Continue;
        };
        for (name, value) in &config.request_headers {
            self.set_http_request_header(name, Some(value));
        }
        if let Some(reply) = config.local_reply(environment_for(&config)) {
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
            for (name, value) in config.response_headers(environment_for(config)) {
                self.add_http_response_header(name, value);
            }
            for shared in &config.shared_data {
                let value = self.get_shared_data(&shared.key).0;
                let value = value.map_or_else(|| UNSET.to_owned(), |v| String::from_utf8_lossy(&v).into_owned());
                self.add_http_response_header(&shared.header, &value);
            }
        }
        Action::Continue
    }
}

/// The VM's environment if `config` reports any of it. Only then is it read,
/// so a failure to read it is logged only where it matters.
fn environment_for(config: &StampConfig) -> Option<&'static Environment> {
    if config.env.is_empty() {
        return None;
    }
    environment().map_err(|e| error!("stamp: leaving out the `env` headers: {e}")).ok()
}
