//! The proxy-wasm glue the test plugins share: a root context that turns the
//! plugin configuration into a rule matcher (rejecting it when it does not
//! parse), and the selection of a stream's config from its `:authority`,
//! route and cluster, as Higress's Go SDK does, with the route and cluster
//! names read from the properties the `properties` option names; and the
//! VM's environment variables (`environment`).

use std::fmt;
use std::rc::Rc;

use log::{debug, error, info};
use plugproof_rules::{ParseError, RuleMatcher};
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::ContextType;

mod env;
mod properties;

pub use env::{environment, parse_environ, Environment, EnvironmentError};
use properties::{deployment_lookup, take_lookup, BadLookup, Lookup, PROPERTIES_ENV};

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
    /// The accepted configuration's `properties` option.
    lookup: Lookup,
}

impl<C> RuleRoot<C> {
    pub fn new(plugin: &'static str, parse: Parse<C>, stream: NewStream<C>) -> Self {
        RuleRoot { plugin, parse, stream, matcher: None, lookup: Lookup::default() }
    }
}

impl<C> Context for RuleRoot<C> {}

impl<C: 'static> RootContext for RuleRoot<C> {
    fn on_configure(&mut self, _size: usize) -> bool {
        let bytes = self.get_plugin_configuration().unwrap_or_default();
        // A VM whose environment cannot be read has no deployment lookup.
        let env = environment().ok().and_then(|env| env.get(PROPERTIES_ENV)).map(String::as_str);
        match configure(&bytes, env, self.parse) {
            Ok((lookup, matcher)) => {
                info!(
                    "{}: rules {:?}, global config: {}, properties: {lookup}",
                    self.plugin,
                    matcher.categories(),
                    matcher.has_global()
                );
                self.matcher = Some(Rc::new(matcher));
                self.lookup = lookup;
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
        Some((self.stream)(Rules { plugin: self.plugin, matcher: self.matcher.clone(), lookup: self.lookup }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// Why a plugin configuration was rejected.
#[derive(Debug, PartialEq, Eq)]
enum ConfigError {
    Properties(BadLookup),
    Rules(ParseError),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Properties(e) => write!(f, "{e}"),
            ConfigError::Rules(e) => write!(f, "{e}"),
        }
    }
}

/// Reads a plugin configuration: the glue's `properties` option (else the
/// deployment's, `env` being the VM's `PLUGPROOF_PROPERTIES`), then the
/// rest with the plugin's `parse`, which never sees that key (so it is no
/// global config).
fn configure<C>(bytes: &[u8], env: Option<&str>, parse: Parse<C>) -> Result<(Lookup, RuleMatcher<Rc<C>>), ConfigError> {
    let default = deployment_lookup(env).map_err(ConfigError::Properties)?;
    let (lookup, rest) = take_lookup(bytes, default).map_err(ConfigError::Properties)?;
    let matcher = parse(&rest).map_err(ConfigError::Rules)?;
    Ok((lookup, matcher))
}

/// What a stream selects its config from: the plugin's rules (None until a
/// configuration is accepted) and where to read the route and cluster names,
/// and its name for the log.
pub struct Rules<C> {
    plugin: &'static str,
    matcher: Option<Matcher<C>>,
    lookup: Lookup,
}

impl<C> Rules<C> {
    /// The config `stream` gets, or None (the plugin leaves it alone).
    pub fn select(&self, stream: &dyn HttpContext) -> Option<Rc<C>> {
        select(self.plugin, self.lookup, stream, self.matcher.as_deref()?)
    }
}

fn select<C>(plugin: &str, lookup: Lookup, stream: &dyn HttpContext, matcher: &RuleMatcher<Rc<C>>) -> Option<Rc<C>> {
    let authority = stream.get_http_request_header(":authority");
    let (route_name, cluster_name) = lookup.read(|path| stream.get_property(path));
    let selected = matcher.select(authority.as_deref(), &route_name, &cluster_name);
    debug!(
        "{plugin}: authority {authority:?}, properties {lookup}: route_name {route_name:?}, \
         cluster_name {cluster_name:?}: {:?}",
        selected.as_ref().map(|s| s.source)
    );
    selected.map(|s| Rc::clone(s.config))
}

#[cfg(test)]
mod tests {
    use super::*;
    use plugproof_rules::Source;
    use serde_json::{json, Value};

    /// A plugin that takes any JSON as its config, so every key it is handed
    /// shows in the result.
    fn parse_any(bytes: &[u8]) -> Result<RuleMatcher<Rc<Value>>, ParseError> {
        RuleMatcher::parse_slice(bytes, |value| Ok::<_, String>(Rc::new(value.clone())))
    }

    fn configure_any(config: Value) -> Result<(Lookup, RuleMatcher<Rc<Value>>), ConfigError> {
        configure(config.to_string().as_bytes(), None, parse_any)
    }

    #[test]
    fn option_alone_is_no_global_config() {
        let rules = json!([{"_match_domain_": ["a.example.com"], "name": "a"}]);
        let (lookup, with) = configure_any(json!({"properties": "xds", "_rules_": rules})).unwrap();
        let (_, without) = configure_any(json!({"_rules_": rules})).unwrap();
        assert_eq!(lookup, Lookup::Xds);
        assert!(!with.has_global());
        assert_eq!(with, without);
        assert_eq!(with.select(Some("b.example.com"), "", ""), None);
    }

    #[test]
    fn global_config_does_not_see_the_option() {
        let (lookup, m) = configure_any(json!({"properties": "higress", "name": "g"})).unwrap();
        assert_eq!(lookup, Lookup::Higress);
        let selected = m.select(Some("h"), "", "").unwrap();
        assert_eq!(selected.source, Source::Global);
        assert_eq!(**selected.config, json!({"name": "g"}));
    }

    #[test]
    fn bad_option_rejects_the_configuration() {
        let err = configure_any(json!({"properties": "envoy", "name": "g"})).unwrap_err();
        assert_eq!(err, ConfigError::Properties(BadLookup { value: r#""envoy""#.to_owned(), from_env: false }));
        assert_eq!(err.to_string(), r#"`properties` is "envoy"; expected "higress" (the default) or "xds""#);
    }

    #[test]
    fn rules_alone_take_the_deployment_lookup() {
        let rules = json!({"_rules_": [{"_match_route_": ["default/web"], "name": "r"}]});
        let (lookup, _) = configure(rules.to_string().as_bytes(), Some("xds"), parse_any).unwrap();
        assert_eq!(lookup, Lookup::Xds);
        let err = configure(rules.to_string().as_bytes(), Some("envoy"), parse_any).unwrap_err();
        assert!(err.to_string().starts_with("the VM's environment variable PLUGPROOF_PROPERTIES"), "{err}");
    }

    #[test]
    fn plugin_parser_still_judges_the_rest() {
        let err = configure(b"{", None, parse_any).unwrap_err();
        assert!(matches!(err, ConfigError::Rules(ParseError::Json(_))), "{err:?}");
        let err = configure_any(json!({"properties": "xds", "_rules_": [{"name": "no-match-keys"}]})).unwrap_err();
        assert_eq!(err, ConfigError::Rules(ParseError::NoMatchKeys { index: 0 }));
    }
}
