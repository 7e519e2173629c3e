//! proxy-wasm glue: appends the selected id to `x-probe` on both paths.

use std::rc::Rc;

use plugproof_glue::Rules;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;

use crate::{append_id, parse_configuration, ProbeConfig, PROBE_HEADER};

plugproof_glue::plugin!("probe", parse_configuration, |rules| Box::new(Stream { rules, config: None }));

struct Stream {
    rules: Rules<ProbeConfig>,
    /// The config selected on the request path, for the response path.
    config: Option<Rc<ProbeConfig>>,
}

impl Context for Stream {}

impl HttpContext for Stream {
    fn on_http_request_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        let Some(config) = self.rules.select(self) else {
            return Action::Continue;
        };
        let value = append_id(self.get_http_request_header(PROBE_HEADER).as_deref(), &config.id);
        self.set_http_request_header(PROBE_HEADER, Some(&value));
        self.config = Some(config);
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        if let Some(config) = &self.config {
            let value = append_id(self.get_http_response_header(PROBE_HEADER).as_deref(), &config.id);
            self.set_http_response_header(PROBE_HEADER, Some(&value));
        }
        Action::Continue
    }
}
