//! Expectations on an HTTP response and on what the echo backend received.

use serde_json::Value;

use super::{Check, Verdict};
use crate::components::echo::SERVICE_FIELD;
use crate::scenario::{BackendExpect, BodyExpect, Expect, HeaderExpect};

const ABSENT: &str = "(absent)";

/// A response as the client saw it.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub status: u16,
    /// Envoy's response code details, when they were asked for: None if
    /// the gateway's access log never showed the request.
    pub details: Option<String>,
    /// In arrival order; names lowercase.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Exchange {
    /// All values of a header joined with ", " (how repeated headers combine).
    pub fn header(&self, name: &str) -> Option<String> {
        let name = name.to_ascii_lowercase();
        let values: Vec<&str> = self.headers.iter().filter(|(n, _)| *n == name).map(|(_, v)| v.as_str()).collect();
        (!values.is_empty()).then(|| values.join(", "))
    }
}

pub fn verify(expect: &Expect, exchange: &Exchange) -> Verdict {
    let mut checks = Vec::new();
    if let Some(status) = expect.status {
        checks.push(Check::new(format!("status: {status}"), format!("status: {}", exchange.status)));
    }
    if let Some(details) = &expect.details {
        let seen =
            exchange.details.as_ref().map_or("(not in the gateway's access log)".to_owned(), |d| format!("{d:?}"));
        checks.push(Check::new(
            format!("envoy response details: {details:?}"),
            format!("envoy response details: {seen}"),
        ));
    }
    for (name, want) in &expect.headers {
        checks.push(header_check("header", name, want, exchange.header(name).as_deref()));
    }
    if let Some(body) = &expect.body {
        body_checks(body, &exchange.body, &mut checks);
    }
    if let Some(backend) = &expect.backend {
        backend_checks(backend, &exchange.body, &mut checks);
    }
    Verdict { checks }
}

fn header_check(prefix: &str, name: &str, want: &HeaderExpect, actual: Option<&str>) -> Check {
    let seen = match actual {
        Some(v) => format!("{prefix} {name}: {v:?}"),
        None => format!("{prefix} {name}: {ABSENT}"),
    };
    match want {
        HeaderExpect::Equals(v) => Check::new(format!("{prefix} {name}: {v:?}"), seen),
        HeaderExpect::Absent => Check::new(format!("{prefix} {name}: {ABSENT}"), seen),
        HeaderExpect::Matches(re) => {
            let expected = format!("{prefix} {name}: ~/{}/", re.as_str());
            if actual.is_some_and(|v| re.is_match(v)) {
                Check::held(expected)
            } else {
                Check::new(expected, seen)
            }
        }
    }
}

fn body_checks(want: &BodyExpect, body: &str, checks: &mut Vec<Check>) {
    if let Some(needle) = &want.contains {
        let expected = format!("body contains {needle:?}");
        checks.push(if body.contains(needle.as_str()) {
            Check::held(expected)
        } else {
            Check::new(expected, format!("body: {:?}", clip(body)))
        });
    }
    if let Some(text) = &want.equals {
        checks.push(Check::new(format!("body: {text:?}"), format!("body: {body:?}")));
    }
    if want.json.is_empty() {
        return;
    }
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    for (pointer, value) in &want.json {
        let seen = match &parsed {
            None => "(body is not JSON)".to_owned(),
            Some(doc) => doc.pointer(pointer).map_or_else(|| "(missing)".to_owned(), Value::to_string),
        };
        checks.push(Check::new(format!("body {pointer}: {value}"), format!("body {pointer}: {seen}")));
    }
}

fn backend_checks(want: &BackendExpect, body: &str, checks: &mut Vec<Check>) {
    let report = serde_json::from_str::<Value>(body).ok().filter(|v| v.get(SERVICE_FIELD).is_some());
    let field = |key: &str| -> String {
        match &report {
            None => "(the response did not come from an echo backend)".to_owned(),
            Some(r) => r[key].as_str().map_or_else(|| ABSENT.to_owned(), |s| format!("{s:?}")),
        }
    };
    for (key, wanted) in [("service", &want.service), ("method", &want.method), ("path", &want.path)] {
        if let Some(v) = wanted {
            checks.push(Check::new(format!("backend {key}: {v:?}"), format!("backend {key}: {}", field(key))));
        }
    }
    for (name, expect) in &want.headers {
        let check = match &report {
            None => Check::new(
                header_check("backend header", name, expect, None).expected,
                format!("backend header {name}: {}", field("headers")),
            ),
            Some(r) => header_check("backend header", name, expect, r["headers"][name.to_ascii_lowercase()].as_str()),
        };
        checks.push(check);
    }
}

fn clip(text: &str) -> String {
    const LIMIT: usize = 300;
    match text.char_indices().nth(LIMIT) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use rstest::rstest;
    use serde_json::json;

    use super::*;

    fn exchange(status: u16, headers: &[(&str, &str)], body: Value) -> Exchange {
        Exchange {
            status,
            details: None,
            headers: headers.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect(),
            body: body.to_string(),
        }
    }

    fn headers(pairs: &[(&str, HeaderExpect)]) -> BTreeMap<String, HeaderExpect> {
        pairs.iter().map(|(n, e)| (n.to_string(), e.clone())).collect()
    }

    fn echo_body() -> Value {
        json!({"service": "echo", "method": "GET", "path": "/x", "headers": {"x-probe": "a,b"}})
    }

    #[rstest]
    #[case::status_matches(Expect { status: Some(200), ..Default::default() }, true)]
    #[case::status_differs(Expect { status: Some(404), ..Default::default() }, false)]
    #[case::header_equals(Expect { headers: headers(&[("x-stamp", HeaderExpect::Equals("a, b".into()))]), ..Default::default() }, true)]
    #[case::header_regex(Expect { headers: headers(&[("x-stamp", HeaderExpect::Matches(regex::Regex::new("^a,").unwrap()))]), ..Default::default() }, true)]
    #[case::header_regex_fails(Expect { headers: headers(&[("x-stamp", HeaderExpect::Matches(regex::Regex::new("^b").unwrap()))]), ..Default::default() }, false)]
    #[case::header_absent(Expect { headers: headers(&[("x-none", HeaderExpect::Absent)]), ..Default::default() }, true)]
    #[case::header_not_absent(Expect { headers: headers(&[("x-stamp", HeaderExpect::Absent)]), ..Default::default() }, false)]
    #[case::body_contains(Expect { body: Some(BodyExpect { contains: Some("\"echo\"".into()), ..Default::default() }), ..Default::default() }, true)]
    #[case::body_pointer(Expect { body: Some(BodyExpect { json: [("/path".to_string(), json!("/x"))].into(), ..Default::default() }), ..Default::default() }, true)]
    #[case::body_pointer_missing(Expect { body: Some(BodyExpect { json: [("/nope".to_string(), json!(1))].into(), ..Default::default() }), ..Default::default() }, false)]
    #[case::backend_saw(Expect { backend: Some(BackendExpect { service: Some("echo".into()), headers: headers(&[("x-probe", HeaderExpect::Equals("a,b".into()))]), ..Default::default() }), ..Default::default() }, true)]
    #[case::backend_saw_other(Expect { backend: Some(BackendExpect { headers: headers(&[("x-probe", HeaderExpect::Equals("b,a".into()))]), ..Default::default() }), ..Default::default() }, false)]
    fn verifies(#[case] expect: Expect, #[case] holds: bool) {
        let x = exchange(200, &[("x-stamp", "a"), ("x-stamp", "b")], echo_body());
        let verdict = verify(&expect, &x);
        assert_eq!(verdict.holds(), holds, "{}", verdict.diff());
    }

    #[test]
    fn a_local_reply_has_no_backend_view() {
        let expect = Expect {
            backend: Some(BackendExpect { service: Some("echo".into()), ..Default::default() }),
            ..Default::default()
        };
        let verdict = verify(&expect, &exchange(403, &[], json!("denied")));
        assert!(verdict.diff().contains("did not come from an echo backend"));
    }
}
