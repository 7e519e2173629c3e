//! One test per scenario file of `scenarios/` and target (`TARGET/ID`), as
//! `plugproof::testing` makes them; the targets come from
//! `PLUGPROOF_TARGETS` (default `envoy`).

mod common;

use std::process::ExitCode;

use plugproof::testing::{targets_from_env, test_main, Suite};

fn main() -> ExitCode {
    // The workspace as the runner says at run time (an archive run remaps it).
    test_main(Suite {
        scenarios: common::workspace().join("scenarios"),
        targets: targets_from_env(),
        options: common::options(),
    })
}
