//! `plugproof compare OLD NEW`: what changed between two conformance
//! reports; exit 1 on a regression, 2 when they cannot be compared.

use std::path::Path;
use std::process::ExitCode;

use plugproof::report::compare::compare;
use plugproof::report::conformance::Report;
use plugproof::report::console;

pub fn main(old: &Path, new: &Path) -> anyhow::Result<ExitCode> {
    let (old, new) = (Report::read(old).map_err(anyhow::Error::msg)?, Report::read(new).map_err(anyhow::Error::msg)?);
    let comparison = compare(&old, &new);
    print!("{}", console::comparison(&comparison));
    Ok(if comparison.regressions().next().is_some() {
        ExitCode::FAILURE
    } else if comparison.pairs.is_empty() {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}
