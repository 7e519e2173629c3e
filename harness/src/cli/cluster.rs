//! `plugproof cluster up | down | status | exec`: the local cluster's
//! life, and the daemon role the `up` command starts.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use plugproof::cluster;
use plugproof::runtime::isolation::{is_isolated, rerun_joining};

use super::{block_on, exit_code, options, INTERRUPTED};

#[derive(clap::Subcommand, Debug)]
pub enum ClusterCommand {
    /// Boot the local single-node cluster (cached kits; istiod and its
    /// images built here), or find it up; prints its kubeconfig.
    Up,
    /// Stop the local cluster and remove everything it made.
    Down,
    /// Say whether the local cluster is up, and its kubeconfig.
    Status,
    /// Build what the local cluster runs (cached, with progress), without booting it.
    Provision,
    /// Run a command on the local cluster's network, where its API and
    /// its Pods are reached (as a machine on a kind cluster's network reaches
    /// kind's): for example `plugproof run --target cluster --kubeconfig ...`
    /// on it as on a cluster of the user's, with `--pods-reach 10.244.0.1`.
    Exec {
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<std::ffi::OsString>,
    },
}

pub fn main(command: &ClusterCommand) -> anyhow::Result<ExitCode> {
    let options = options(Default::default());
    match command {
        ClusterCommand::Up => {
            let up = block_on(async { Ok(cluster::up(&options).await?) })?;
            Ok(match up {
                Some(cluster) => {
                    println!("the local cluster is up; kubeconfig: {}", cluster.kubeconfig.display());
                    ExitCode::SUCCESS
                }
                None => {
                    // Interrupted: a half-booted cluster is not left behind.
                    block_on(async { Ok(cluster::down(&options).await?) })?;
                    ExitCode::from(INTERRUPTED)
                }
            })
        }
        ClusterCommand::Down => {
            block_on(async { Ok(cluster::down(&options).await?) })?;
            println!("the local cluster is down");
            Ok(ExitCode::SUCCESS)
        }
        ClusterCommand::Provision => {
            let done = block_on(async { Ok(cluster::kits(&options).await.map(|_| ())?) })?;
            Ok(done.map_or(ExitCode::from(INTERRUPTED), |()| ExitCode::SUCCESS))
        }
        ClusterCommand::Exec { command } => {
            let cluster =
                cluster::running(&options).context("no local cluster is up; start it with `plugproof cluster up`")?;
            let node = cluster.node_pid().context("the cluster's daemon has no node process")?;
            let status = std::process::Command::new("nsenter")
                .args(["--target", &node.to_string(), "--net", "--"])
                .args(command)
                .status()
                .context("cannot run nsenter (util-linux)")?;
            Ok(exit_code(status))
        }
        ClusterCommand::Status => Ok(match cluster::running(&options) {
            Some(cluster) if is_isolated() => {
                let facts = block_on(async {
                    let client = cluster::manifests::client(&cluster.kubeconfig).await?;
                    Ok(cluster::facts::read(&client).await?)
                })?;
                facts.map_or(ExitCode::from(INTERRUPTED), |facts| {
                    print!("{facts}");
                    ExitCode::SUCCESS
                })
            }
            Some(cluster) => {
                println!("up (daemon {}); kubeconfig: {}", cluster.pid, cluster.kubeconfig.display());
                println!("istio pin {}; gateway image {} (in the node)", cluster.pin, cluster.gateway_image);
                let node = cluster.node_pid().context("the cluster's daemon has no node process")?;
                // Its API serves on the node's address: asked from inside the node's network.
                let status = rerun_joining(node, std::env::args_os().skip(1), &[], node)?;
                exit_code(status)
            }
            None => {
                println!("down");
                ExitCode::from(1)
            }
        }),
    }
}

/// The daemon `up` starts, in the node's namespaces: serves until told to stop.
pub fn daemon(state: &Path) -> ExitCode {
    let options = options(Default::default());
    let served = tokio::runtime::Runtime::new()
        .map_err(anyhow::Error::from)
        .and_then(|rt| rt.block_on(cluster::serve(state, &options)).map_err(anyhow::Error::from));
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("plugproof cluster daemon: {e:#}");
            ExitCode::from(2)
        }
    }
}
