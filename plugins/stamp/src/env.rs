//! The `env` key: response headers that report the VM's environment
//! variables, so a harness can check what Istio's `vmConfig.env` hands the
//! module.

use std::fmt;

use plugproof_glue::Environment;
use serde::Deserialize;

/// Prefix of the reporting headers; the lowercased variable name follows.
pub const ENV_HEADER_PREFIX: &str = "x-stamp-env-";

/// The header value for a variable the VM does not have.
pub const UNSET: &str = "(unset)";

/// One variable listed in `env`, with the header that reports it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct EnvHeader {
    pub variable: String,
    pub header: String,
}

/// A name in a list of reported values (`env`, `shared_data`) that cannot
/// be part of a header name.
#[derive(Debug, PartialEq, Eq)]
pub struct BadName {
    key: &'static str,
    name: String,
}

impl fmt::Display for BadName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {:?} cannot be part of a header name; list names made of letters, digits, `_` and `-`",
            self.key, self.name
        )
    }
}

/// `prefix` then `name` lowercased: the header that reports `name`, listed under `key`.
pub fn report_header(key: &'static str, prefix: &str, name: &str) -> Result<String, BadName> {
    // HTTP's token characters; Envoy refuses header names with others.
    let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if name.is_empty() || !name.chars().all(token) {
        return Err(BadName { key, name: name.to_owned() });
    }
    Ok(format!("{prefix}{}", name.to_ascii_lowercase()))
}

impl TryFrom<String> for EnvHeader {
    type Error = BadName;

    fn try_from(variable: String) -> Result<Self, BadName> {
        let header = report_header("env", ENV_HEADER_PREFIX, &variable)?;
        Ok(EnvHeader { variable, header })
    }
}

impl EnvHeader {
    /// The header and the variable's value, or `UNSET`.
    pub fn report<'a>(&'a self, environment: &'a Environment) -> (&'a str, &'a str) {
        (self.header.as_str(), environment.get(&self.variable).map_or(UNSET, String::as_str))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(name: &str) -> EnvHeader {
        EnvHeader::try_from(name.to_owned()).expect("valid name")
    }

    #[test]
    fn header_name_is_the_lowercased_variable() {
        assert_eq!(header("HOST_IP").header, "x-stamp-env-host_ip");
        assert_eq!(header("HOST_IP").variable, "HOST_IP");
    }

    #[test]
    fn reports_the_value_or_unset() {
        let environment: Environment = [("GREETING".to_owned(), "hello".to_owned())].into();
        assert_eq!(header("GREETING").report(&environment), ("x-stamp-env-greeting", "hello"));
        assert_eq!(header("greeting").report(&environment), ("x-stamp-env-greeting", UNSET));
        assert_eq!(header("MISSING").report(&environment), ("x-stamp-env-missing", UNSET));
    }

    #[test]
    fn names_must_fit_in_a_header_name() {
        for name in ["", "A B", "A:B", "A=B", "Ä"] {
            let err = EnvHeader::try_from(name.to_owned()).unwrap_err();
            assert!(err.to_string().contains("cannot be part of a header name"), "{err}");
        }
    }
}
