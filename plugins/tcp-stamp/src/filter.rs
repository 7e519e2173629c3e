//! proxy-wasm glue: a root context that takes the configuration, and a
//! stream context per TCP connection.

use std::rc::Rc;

use log::{error, info};
use proxy_wasm::traits::{Context, RootContext, StreamContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};

use crate::{classify, parse_configuration, stamp, Config, Connection};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Debug);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root { config: None }) });
}}

struct Root {
    config: Option<Rc<Config>>,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        let bytes = self.get_plugin_configuration().unwrap_or_default();
        match parse_configuration(&bytes) {
            Ok(config) => {
                info!("tcp-stamp: stamping as {}", config.name);
                self.config = Some(Rc::new(config));
                true
            }
            Err(e) => {
                error!("tcp-stamp: bad configuration: {e}");
                false
            }
        }
    }

    fn create_stream_context(&self, _context_id: u32) -> Option<Box<dyn StreamContext>> {
        let config = self.config.clone()?;
        Some(Box::new(Stream { config, kind: None }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::StreamContext)
    }
}

struct Stream {
    config: Rc<Config>,
    /// Known once the client has sent something.
    kind: Option<Connection>,
}

impl Context for Stream {}

impl StreamContext for Stream {
    fn on_downstream_data(&mut self, size: usize, _end_of_stream: bool) -> Action {
        if self.kind.is_none() && size > 0 {
            let first = self.get_downstream_data(0, size).unwrap_or_default();
            self.kind = Some(classify(&first));
        }
        Action::Continue
    }

    fn on_upstream_data(&mut self, size: usize, _end_of_stream: bool) -> Action {
        if self.kind == Some(Connection::Stamped) && size > 0 {
            let chunk = self.get_upstream_data(0, size).unwrap_or_default();
            self.set_upstream_data(0, size, &stamp(&self.config.name, &chunk));
        }
        Action::Continue
    }
}
