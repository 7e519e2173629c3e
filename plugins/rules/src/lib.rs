//! A host-testable re-implementation of the rule matcher of the Higress Go
//! SDK (`github.com/higress-group/wasm-go`, `pkg/matcher/rule_matcher.go`).
//!
//! A plugin configuration is a JSON object. `_rules_` holds a list of rules,
//! each selecting a request by route, domain, service or route prefix; every
//! other top-level key belongs to the global config, used when no rule
//! matches. The first matching rule in list order wins.
//!
//! Where the Go code reads JSON through gjson, this crate reproduces gjson's
//! leniency: a scalar where a list is expected counts as a one-element list,
//! and a non-string list item counts as its JSON text (`null` as "").

use serde_json::Value;
use thiserror::Error;

#[cfg(test)]
mod tests;

const RULES_KEY: &str = "_rules_";
const MATCH_ROUTE_KEY: &str = "_match_route_";
const MATCH_DOMAIN_KEY: &str = "_match_domain_";
const MATCH_SERVICE_KEY: &str = "_match_service_";
const MATCH_ROUTE_PREFIX_KEY: &str = "_match_route_prefix_";

/// Why a plugin configuration was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseError {
    #[error("configuration is not valid JSON: {0}")]
    Json(String),
    /// `_rules_` is absent or empty and there is no usable global config.
    #[error(
        "no rules in `_rules_` and no global config{}",
        global_error.as_deref().map(|e| format!(" (global config: {e})")).unwrap_or_default()
    )]
    NoRules { global_error: Option<String> },
    /// The configuration is `{}` (or not an object) and the plugin's parser
    /// rejected it as the global config.
    #[error("global config: {0}")]
    Global(String),
    #[error(
        "rule {index}: needs at least one of `_match_route_`, `_match_domain_`, \
         `_match_service_`, `_match_route_prefix_`"
    )]
    NoMatchKeys { index: usize },
    /// The plugin's parser rejected a rule's config.
    #[error("rule {index}: {message}")]
    Rule { index: usize, message: String },
}

/// What a rule matches on, decided by which `_match_*_` keys it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    /// `_match_route_` (domains, if any, are ignored).
    Route,
    /// `_match_route_` and `_match_service_`: both must match.
    RouteAndService,
    /// `_match_domain_` (services, if any, are ignored).
    Host,
    /// `_match_service_` only.
    Service,
    /// `_match_route_prefix_` only.
    RoutePrefix,
}

/// Where a selected config came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The rule at this index of `_rules_`.
    Rule(usize),
    Global,
}

/// The config that applies to a request.
#[derive(Debug, PartialEq)]
pub struct Selected<'a, C> {
    pub source: Source,
    pub config: &'a C,
}

// By hand: derived impls would demand `C: Copy`, but only a reference is copied.
impl<C> Clone for Selected<'_, C> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<C> Copy for Selected<'_, C> {}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    /// `*xyz`: the host ends with `xyz` (`*` alone matches every host).
    Suffix(String),
    /// `xyz*`: the host starts with `xyz`.
    Prefix(String),
    Exact(String),
}

impl HostPattern {
    fn parse(domain: String) -> Self {
        // A leading `*` wins over a trailing one, as in Go: `*a*` is the suffix `a*`.
        if let Some(suffix) = domain.strip_prefix('*') {
            HostPattern::Suffix(suffix.to_owned())
        } else if let Some(prefix) = domain.strip_suffix('*') {
            HostPattern::Prefix(prefix.to_owned())
        } else {
            HostPattern::Exact(domain)
        }
    }

    fn matches(&self, host: &str) -> bool {
        match self {
            HostPattern::Suffix(s) => host.ends_with(s.as_str()),
            HostPattern::Prefix(p) => host.starts_with(p.as_str()),
            HostPattern::Exact(e) => host == e,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Matcher {
    Route(Vec<String>),
    RouteAndService { routes: Vec<String>, services: Vec<String> },
    Host(Vec<HostPattern>),
    Service(Vec<String>),
    RoutePrefix(Vec<String>),
}

impl Matcher {
    fn category(&self) -> Category {
        match self {
            Matcher::Route(_) => Category::Route,
            Matcher::RouteAndService { .. } => Category::RouteAndService,
            Matcher::Host(_) => Category::Host,
            Matcher::Service(_) => Category::Service,
            Matcher::RoutePrefix(_) => Category::RoutePrefix,
        }
    }

    fn matches(&self, host: &str, route_name: &str, cluster_name: &str) -> bool {
        let route_matches = |routes: &[String]| routes.iter().any(|r| r == route_name);
        match self {
            Matcher::Route(routes) => route_matches(routes),
            Matcher::RouteAndService { routes, services } => {
                route_matches(routes) && service_matches(services, cluster_name)
            }
            Matcher::Host(patterns) => {
                let host = strip_port(host);
                patterns.iter().any(|p| p.matches(host))
            }
            Matcher::Service(services) => service_matches(services, cluster_name),
            Matcher::RoutePrefix(prefixes) => prefixes.iter().any(|p| route_name.starts_with(p.as_str())),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
struct Rule<C> {
    matcher: Matcher,
    config: C,
}

/// The parsed rules and global config of one plugin configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleMatcher<C> {
    rules: Vec<Rule<C>>,
    global: Option<C>,
}

impl<C> RuleMatcher<C> {
    /// Parses the plugin configuration as Envoy hands it over: JSON text,
    /// where an empty configuration counts as `{}`, as in the Go SDK.
    pub fn parse_slice<E: std::fmt::Display>(
        bytes: &[u8],
        parse: impl Fn(&Value) -> Result<C, E>,
    ) -> Result<Self, ParseError> {
        if bytes.is_empty() {
            return Self::parse(&Value::Object(Default::default()), parse);
        }
        let config: Value = serde_json::from_slice(bytes).map_err(|e| ParseError::Json(e.to_string()))?;
        Self::parse(&config, parse)
    }

    /// Parses a plugin configuration. `parse` turns a JSON object into the
    /// plugin's config; it gets each rule object (`_match_*_` keys included,
    /// so it must ignore unknown keys) and, for the global config, the whole
    /// configuration (`_rules_` included).
    ///
    /// As in Go, a global config that `parse` rejects is silently dropped
    /// when there are rules; only without rules is it an error.
    pub fn parse<E: std::fmt::Display>(
        config: &Value,
        parse: impl Fn(&Value) -> Result<C, E>,
    ) -> Result<Self, ParseError> {
        let object = match config.as_object() {
            // Go reads a non-object like `{}`: everything is global config.
            Some(object) if !object.is_empty() => object,
            _ => {
                let global = parse(config).map_err(|e| ParseError::Global(e.to_string()))?;
                return Ok(RuleMatcher { rules: Vec::new(), global: Some(global) });
            }
        };
        let rule_values = object.get(RULES_KEY).map(as_list).unwrap_or_default();
        let has_global_keys = object.keys().any(|k| k != RULES_KEY);
        let (global, global_error) = if has_global_keys {
            match parse(config) {
                Ok(global) => (Some(global), None),
                Err(e) => (None, Some(e.to_string())),
            }
        } else {
            (None, None)
        };
        if rule_values.is_empty() {
            return match global {
                Some(_) => Ok(RuleMatcher { rules: Vec::new(), global }),
                None => Err(ParseError::NoRules { global_error }),
            };
        }
        let rules = rule_values
            .into_iter()
            .enumerate()
            .map(|(index, value)| {
                let matcher = parse_matcher(value).ok_or(ParseError::NoMatchKeys { index })?;
                let config = parse(value).map_err(|e| ParseError::Rule { index, message: e.to_string() })?;
                Ok(Rule { matcher, config })
            })
            .collect::<Result<_, _>>()?;
        Ok(RuleMatcher { rules, global })
    }

    /// Selects the config for a request: the first rule in list order that
    /// matches, else the global config. `route_name` and `cluster_name` are
    /// the stream's route and cluster names from Envoy's properties, ""
    /// when absent. Without an
    /// `:authority` nothing applies, not even the global config (Go fails to
    /// read the header and leaves the stream alone).
    pub fn select(&self, authority: Option<&str>, route_name: &str, cluster_name: &str) -> Option<Selected<'_, C>> {
        let host = authority?;
        self.rules
            .iter()
            .position(|rule| rule.matcher.matches(host, route_name, cluster_name))
            .map(|index| Selected { source: Source::Rule(index), config: &self.rules[index].config })
            .or_else(|| self.global.as_ref().map(|config| Selected { source: Source::Global, config }))
    }

    /// The category of each rule, in list order.
    pub fn categories(&self) -> Vec<Category> {
        self.rules.iter().map(|rule| rule.matcher.category()).collect()
    }

    pub fn has_global(&self) -> bool {
        self.global.is_some()
    }

    /// Every config: the rules' in list order, then the global one.
    pub fn configs(&self) -> impl Iterator<Item = &C> {
        self.rules.iter().map(|rule| &rule.config).chain(&self.global)
    }
}

/// Builds a rule's matcher, or None if it has no usable `_match_*_` key.
fn parse_matcher(rule: &Value) -> Option<Matcher> {
    let strings = |key: &str| -> Vec<String> {
        rule.get(key).map(as_list).unwrap_or_default().into_iter().map(gjson_string).filter(|s| !s.is_empty()).collect()
    };
    let routes = strings(MATCH_ROUTE_KEY);
    let services = strings(MATCH_SERVICE_KEY);
    let prefixes = strings(MATCH_ROUTE_PREFIX_KEY);
    // Go keeps empty domains (an exact "" matches a port-only authority);
    // only routes, services and prefixes drop empty strings.
    let domains: Vec<HostPattern> = rule
        .get(MATCH_DOMAIN_KEY)
        .map(as_list)
        .unwrap_or_default()
        .into_iter()
        .map(|v| HostPattern::parse(gjson_string(v)))
        .collect();
    Some(if !routes.is_empty() {
        if services.is_empty() {
            Matcher::Route(routes)
        } else {
            Matcher::RouteAndService { routes, services }
        }
    } else if !domains.is_empty() {
        Matcher::Host(domains)
    } else if !services.is_empty() {
        Matcher::Service(services)
    } else if !prefixes.is_empty() {
        Matcher::RoutePrefix(prefixes)
    } else {
        return None;
    })
}

/// gjson's `Result.Array()`: null is empty, a non-array is a one-element list.
fn as_list(value: &Value) -> Vec<&Value> {
    match value {
        Value::Null => Vec::new(),
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    }
}

/// gjson's `Result.String()`: a string as is, null as "", anything else as JSON text.
fn gjson_string(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Removes a `:port` suffix, leaving an IPv6 literal such as `[::1]` whole.
fn strip_port(host: &str) -> &str {
    match host.rfind(':') {
        Some(colon) if host.rfind(']').is_none_or(|bracket| bracket < colon) => &host[..colon],
        _ => host,
    }
}

/// Whether an Istio-style cluster name `outbound|PORT|SUBSET|FQDN` is one of
/// `services`, each given as `FQDN` or `FQDN:PORT`.
fn service_matches(services: &[String], cluster_name: &str) -> bool {
    let parts: Vec<&str> = cluster_name.split('|').collect();
    let [_, port, _, fqdn] = parts[..] else {
        return false;
    };
    services.iter().any(|service| {
        service == fqdn
            || service.rsplit_once(':').is_some_and(|(name, service_port)| name == fqdn && service_port == port)
    })
}
