//! JUnit XML, one test suite per profile, one test case per scenario (its
//! modules, by source and digest, as system-out).

use std::path::Path;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use crate::outcome::{Outcome, Status};

pub fn write(path: &Path, profile: &str, outcomes: &[Outcome]) -> std::io::Result<()> {
    let mut suite = TestSuite::new(profile);
    for outcome in outcomes {
        let status = match &outcome.status {
            Status::Passed => TestCaseStatus::success(),
            Status::Failed(failure) => {
                let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                status
                    .set_type(failure.kind.name())
                    .set_message(failure.message.lines().next().unwrap_or_default())
                    .set_description(failure.message.as_str());
                status
            }
            Status::Skipped(reason) => {
                let mut status = TestCaseStatus::skipped();
                status.set_message(reason.as_str());
                status
            }
        };
        let mut case = TestCase::new(outcome.id.as_str(), status);
        case.set_classname(outcome.file.display().to_string()).set_time(outcome.timings.total);
        if !outcome.modules.is_empty() {
            case.set_system_out(super::bundle::modules(&outcome.modules));
        }
        suite.add_test_case(case);
    }
    let mut report = Report::new("plugproof");
    report.add_test_suite(suite);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let file = std::fs::File::create(path)?;
    report.serialize(file).map_err(std::io::Error::other)
}
