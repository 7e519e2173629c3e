//! What a run tells its user: the console, JUnit XML, the failure bundle,
//! and progress for long work.

pub mod bundle;
pub mod console;
pub mod junit;
pub mod progress;
