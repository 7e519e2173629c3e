//! proxy-wasm glue: traps where the configuration says, else stamps
//! `x-fault` on the response.

use std::rc::Rc;

use plugproof_glue::Rules;
use plugproof_rules::{ParseError, RuleMatcher};
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;

use crate::{parse_configuration, traps_on_configure, FaultConfig, Trap, FAULT_HEADER};

plugproof_glue::plugin!("fault", configure, |rules| Box::new(Stream { rules, config: None }));

/// Parses the configuration; the glue calls this from `on_configure`, so
/// trapping here traps there.
fn configure(bytes: &[u8]) -> Result<RuleMatcher<Rc<FaultConfig>>, ParseError> {
    let matcher = parse_configuration(bytes)?;
    if traps_on_configure(&matcher) {
        trap("on_configure");
    }
    Ok(matcher)
}

/// A real Wasm trap: the modules are built with panic=abort, which ends a
/// panic in `unreachable` after the SDK's panic hook has logged the message
/// (at critical level), so Envoy's log tells a deliberate trap from a bug.
fn trap(callback: &str) -> ! {
    panic!("fault: trapping in {callback} as configured (`trap`)");
}

struct Stream {
    rules: Rules<FaultConfig>,
    /// The config selected on the request path, for the response path.
    config: Option<Rc<FaultConfig>>,
}

impl Context for Stream {}

impl HttpContext for Stream {
    fn on_http_request_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        let Some(config) = self.rules.select(self) else {
            return Action::Continue;
        };
        if config.trap == Some(Trap::RequestHeaders) {
            trap("on_http_request_headers");
        }
        self.config = Some(config);
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        if let Some(config) = &self.config {
            self.add_http_response_header(FAULT_HEADER, &config.name);
        }
        Action::Continue
    }
}
