//! The proxy-wasm glue the test plugins share: a root context that turns the
//! plugin configuration into a rule matcher (rejecting it when it does not
//! parse), and the selection of a stream's config from its `:authority`,
//! route and cluster, as Higress's Go SDK does; and the VM's environment
//! variables (`environment`).

use std::rc::Rc;

use log::{debug, error, info};
use plugproof_rules::{ParseError, RuleMatcher};
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::ContextType;

mod env;

pub use env::{environment, parse_environ, Environment, EnvironmentError};

/// A plugin's configs, shared with the streams that select them.
type Matcher<C> = Rc<RuleMatcher<Rc<C>>>;

/// Reads a plugin configuration into its configs.
pub type Parse<C> = fn(&[u8]) -> Result<RuleMatcher<Rc<C>>, ParseError>;

/// Makes the context of one HTTP stream.
pub type NewStream<C> = fn(Rules<C>) -> Box<dyn HttpContext>;

/// Declares a test plugin's entry point: `parse` reads its configuration,
/// `stream` makes the context of each HTTP stream.
#[macro_export]
macro_rules! plugin {
    ($name:expr, $parse:expr, $stream:expr) => {
        proxy_wasm::main! {{
            // Envoy filters by its own `wasm` log level; send everything.
            proxy_wasm::set_log_level(proxy_wasm::types::LogLevel::Debug);
            proxy_wasm::set_root_context(|_| -> Box<dyn proxy_wasm::traits::RootContext> {
                Box::new($crate::RuleRoot::new($name, $parse, $stream))
            });
        }}
    };
}

/// The root context of a test plugin (see `plugin!`).
pub struct RuleRoot<C> {
    plugin: &'static str,
    parse: Parse<C>,
    stream: NewStream<C>,
    /// None until a configuration is accepted.
    matcher: Option<Matcher<C>>,
}

impl<C> RuleRoot<C> {
    pub fn new(plugin: &'static str, parse: Parse<C>, stream: NewStream<C>) -> Self {
        RuleRoot { plugin, parse, stream, matcher: None }
    }
}

impl<C> Context for RuleRoot<C> {}

impl<C: 'static> RootContext for RuleRoot<C> {
    fn on_configure(&mut self, _size: usize) -> bool {
        let bytes = self.get_plugin_configuration().unwrap_or_default();
        match (self.parse)(&bytes) {
            Ok(matcher) => {
                info!("{}: rules {:?}, global config: {}", self.plugin, matcher.categories(), matcher.has_global());
                self.matcher = Some(Rc::new(matcher));
                true
            }
            Err(e) => {
                // Returning false makes Envoy reject the configuration.
                error!("{}: rejecting configuration: {e}", self.plugin);
                false
            }
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        // The SDK panics on None, so a stream always gets a context.
        Some((self.stream)(Rules { plugin: self.plugin, matcher: self.matcher.clone() }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// What a stream selects its config from: the plugin's rules (None until a
/// configuration is accepted), and its name for the log.
pub struct Rules<C> {
    plugin: &'static str,
    matcher: Option<Matcher<C>>,
}

impl<C> Rules<C> {
    /// The config `stream` gets, or None (the plugin leaves it alone).
    pub fn select(&self, stream: &dyn HttpContext) -> Option<Rc<C>> {
        select(self.plugin, stream, self.matcher.as_deref()?)
    }
}

fn select<C>(plugin: &str, stream: &dyn HttpContext, matcher: &RuleMatcher<Rc<C>>) -> Option<Rc<C>> {
    let authority = stream.get_http_request_header(":authority");
    let route_name = property(stream, "route_name");
    let cluster_name = property(stream, "cluster_name");
    let selected = matcher.select(authority.as_deref(), &route_name, &cluster_name);
    debug!(
        "{plugin}: authority {authority:?}, route_name {route_name:?}, cluster_name {cluster_name:?}: {:?}",
        selected.as_ref().map(|s| s.source)
    );
    selected.map(|s| Rc::clone(s.config))
}

/// A property as a string, "" when Envoy has none (as the Go SDK reads it).
/// The Go SDK reads top-level `route_name` and `cluster_name`, which
/// Higress's Envoy serves; upstream Envoy (1.40) answers NotFound there and
/// has them only as `xds.route_name` and `xds.cluster_name`.
fn property(stream: &dyn HttpContext, name: &str) -> String {
    stream
        .get_property(vec![name])
        .or_else(|| stream.get_property(vec!["xds", name]))
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default()
}
