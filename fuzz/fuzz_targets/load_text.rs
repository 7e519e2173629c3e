//! Arbitrary text (seeded with the repository's scenarios and fixtures) as
//! a scenario file.
#![no_main]

use libfuzzer_sys::fuzz_target;

mod common;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        common::check(text);
    }
});
