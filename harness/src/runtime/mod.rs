//! How components run: local processes in their own process groups, on a
//! loopback address of the run's own, until the run ends or is interrupted.

pub mod isolation;
mod loopback;
pub mod ports;
mod process;
pub mod rundir;
mod signals;

pub use loopback::Loopback;
pub use process::{Process, ProcessError, ProcessSpec};
pub use signals::{until_interrupted, Interrupted};
