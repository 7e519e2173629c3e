//! The `tcp` step's expectation: the bytes that came back.

use super::{Check, Verdict};

/// What came back must be `expected`, byte for byte.
pub fn verify(expected: &str, received: &[u8]) -> Verdict {
    let line = |bytes: &[u8]| format!("received {:?}", String::from_utf8_lossy(bytes));
    Verdict { checks: vec![Check::new(line(expected.as_bytes()), line(received))] }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bytes_must_be_those_expected() {
        assert!(verify("[a]ping", b"[a]ping").holds());
        let verdict = verify("[a]ping", b"[b]ping");
        assert_eq!(verdict.mismatches()[0].actual, "received \"[b]ping\"");
        assert!(!verify("[a]ping", b"").holds());
    }
}
