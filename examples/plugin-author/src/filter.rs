//! The proxy-wasm glue: one root context per plugin config, one HTTP
//! context per request.

use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};

use crate::{Config, Decision};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| Box::new(Root { config: None }));
}}

struct Root {
    config: Option<Rc<Config>>,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        let bytes = self.get_plugin_configuration().unwrap_or_default();
        match Config::parse(&bytes) {
            Ok(config) => {
                self.config = Some(Rc::new(config));
                true
            }
            Err(e) => {
                log::error!("api-key: refusing the configuration: {e}");
                false
            }
        }
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        let config = self.config.clone()?;
        Some(Box::new(Request { config }))
    }
}

struct Request {
    config: Rc<Config>,
}

impl Context for Request {}

impl HttpContext for Request {
    fn on_http_request_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        let key = self.get_http_request_header(&self.config.header);
        match self.config.decide(key.as_deref()) {
            Decision::Allow { consumer } => {
                self.set_http_request_header(&self.config.header, None);
                self.set_http_request_header(&self.config.consumer_header, Some(consumer));
                Action::Continue
            }
            Decision::Deny(why) => {
                let challenge = self.config.challenge();
                let headers = vec![("www-authenticate", challenge.as_str()), ("content-type", "text/plain")];
                self.send_http_response(401, headers, Some(why.as_bytes()));
                Action::Pause
            }
        }
    }
}
