//! What Envoy's access log says of one request: its response code
//! details and flags, which tell a plugin's own failure (`wasm_fail_stream`)
//! from any other answer with the same status. A request that asks for
//! them carries `x-plugproof-request: ID`; the gateway logs it as one JSON
//! line (the standalone profile only such requests, the istio profile
//! every request, through its mesh config's access log), and the line is
//! found by its ID.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

/// The request header that names a request in the access log.
pub const REQUEST_HEADER: &str = "x-plugproof-request";
/// The access log's JSON line, as Envoy's `json_format` (keys to command operators).
pub const FIELDS: [(&str, &str); 4] = [
    ("plugproof_request", "%REQ(X-PLUGPROOF-REQUEST)%"),
    ("code", "%RESPONSE_CODE%"),
    ("details", "%RESPONSE_CODE_DETAILS%"),
    ("flags", "%RESPONSE_FLAGS%"),
];
/// How often Envoy writes its access log out: the gateways run with this
/// flush interval, so that a request's line is there soon after its answer.
pub const FLUSH: Duration = Duration::from_millis(50);
/// How long a request's line may take to appear.
const WAIT: Duration = Duration::from_secs(3);

/// The access log's `json_format`.
pub fn json_format() -> Value {
    FIELDS.iter().map(|(key, operator)| ((*key).to_owned(), Value::from(*operator))).collect()
}

/// One request's line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub code: String,
    pub details: String,
    pub flags: String,
}

/// The entry of the request named `id`, in the log at `path` from byte
/// `from` on, waiting until it is written; None when it never is.
pub async fn find(path: &Path, from: u64, id: &str) -> Option<Entry> {
    let started = Instant::now();
    loop {
        if let Some(entry) = std::fs::read(path).ok().and_then(|bytes| entry_in(bytes.get(from as usize..)?, id)) {
            return Some(entry);
        }
        if started.elapsed() > WAIT {
            return None;
        }
        tokio::time::sleep(FLUSH / 2).await;
    }
}

/// The line for `id` among `log`'s lines (other lines, not JSON, are skipped).
fn entry_in(log: &[u8], id: &str) -> Option<Entry> {
    let text = String::from_utf8_lossy(log);
    text.lines().filter(|l| l.starts_with('{')).find_map(|line| {
        let value: Value = serde_json::from_str(line).ok()?;
        (value["plugproof_request"].as_str() == Some(id)).then(|| {
            let field = |key: &str| match &value[key] {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            };
            Entry { code: field("code"), details: field("details"), flags: field("flags") }
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_line_of_one_request_among_others() {
        let log = br#"2026-12-03T10:00:00Z	info	envoy main	starting
{"plugproof_request":"1","code":200,"details":"via_upstream","flags":"-"}
{"plugproof_request":"2","code":503,"details":"wasm_fail_stream","flags":"-"}
{"plugproof_request":null,"code":200,"details":"via_upstream","flags":"-"}
"#;
        let entry = entry_in(log, "2").expect("the second request's line");
        assert_eq!(entry, Entry { code: "503".into(), details: "wasm_fail_stream".into(), flags: "-".into() });
        assert_eq!(entry_in(log, "3"), None);
    }

    #[test]
    fn the_format_names_every_field() {
        let format = json_format();
        assert_eq!(format["details"], "%RESPONSE_CODE_DETAILS%");
        assert_eq!(format.as_object().map(|o| o.len()), Some(FIELDS.len()));
    }
}
