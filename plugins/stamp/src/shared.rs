//! The `shared_data` key: response headers that report values of the VM's
//! shared data (which a Wasm service of the same `vm_id` can write), so a
//! harness can see what crossed from one VM to another.

use serde::Deserialize;

use crate::env::{report_header, BadName};

/// Prefix of the reporting headers; the lowercased key follows.
pub const SHARED_HEADER_PREFIX: &str = "x-stamp-shared-";

/// One shared-data key listed in `shared_data`, with the header that reports it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct SharedHeader {
    pub key: String,
    pub header: String,
}

impl TryFrom<String> for SharedHeader {
    type Error = BadName;

    fn try_from(key: String) -> Result<Self, BadName> {
        let header = report_header("shared_data", SHARED_HEADER_PREFIX, &key)?;
        Ok(SharedHeader { key, header })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_is_the_lowercased_key() {
        let header = SharedHeader::try_from("Greeting".to_owned()).expect("a valid key");
        assert_eq!((header.key.as_str(), header.header.as_str()), ("Greeting", "x-stamp-shared-greeting"));
        let err = SharedHeader::try_from("a b".to_owned()).unwrap_err();
        assert!(err.to_string().starts_with("shared_data: \"a b\" cannot be part of a header name"), "{err}");
    }
}
