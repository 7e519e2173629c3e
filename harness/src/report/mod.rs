//! What a run tells its user: the console, JUnit XML, an HTML report (with
//! reload timelines), the failure bundle, and progress for long work.

pub mod bundle;
pub mod chain;
pub mod compare;
pub mod conformance;
pub mod console;
pub mod html;
pub mod junit;
pub mod matrix;
pub mod progress;
mod stats_chart;
pub mod timeline;

/// Text made safe for HTML and SVG.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}
