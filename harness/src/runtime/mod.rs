//! How components run: local processes in their own process groups, or a
//! target's gateway programs as containers of an image or Pods of a
//! cluster (`Runtime`), on a loopback address of the run's own, until the
//! run ends or is interrupted.

mod component;
pub mod container;
mod host;
pub mod isolation;
mod loopback;
pub mod owner;
pub mod pod;
pub mod port_forward;
pub mod ports;
mod process;
pub mod rundir;
mod signals;

pub use component::{Launch, Program, Running, Runtime, RuntimeError};
pub use host::HostRuntime;
pub use loopback::Loopback;
pub use process::{Process, ProcessError, ProcessSpec};
pub use signals::{until_interrupted, Interrupted};

/// What the edges (the CLI, test binaries) do first: serve as a container
/// reaper if started as one (and exit), take the owner a re-running
/// process names (`owner`), pick the container engine
/// (`DOCKER_HOST`, else Docker's socket, else Podman's), then sweep
/// what runs killed outright left behind: run folders and containers whose
/// owner is gone.
pub fn at_start() {
    container::reaper::serve_if_asked();
    owner::adopt();
    container::engine::default_to_podman();
    rundir::sweep();
    if let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() {
        runtime.block_on(container::engine::sweep());
    }
}
