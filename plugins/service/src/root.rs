//! proxy-wasm glue: the service's root context writes the shared data.

use log::{error, info};
use proxy_wasm::traits::{Context, RootContext};
use proxy_wasm::types::LogLevel;

use crate::parse_configuration;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Debug);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Service) });
}}

struct Service;

impl Context for Service {}

impl RootContext for Service {
    fn on_configure(&mut self, _size: usize) -> bool {
        let bytes = self.get_plugin_configuration().unwrap_or_default();
        let config = match parse_configuration(&bytes) {
            Ok(config) => config,
            Err(e) => {
                error!("service: bad configuration: {e}");
                return false;
            }
        };
        for (key, value) in &config.shared_data {
            if let Err(status) = self.set_shared_data(key, Some(value.as_bytes()), None) {
                error!("service: cannot set shared data {key}: {status:?}");
                return false;
            }
            info!("service: shared data {key} = {value}");
        }
        true
    }
}
