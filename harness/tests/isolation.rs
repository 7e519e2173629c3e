//! Scenarios sharing a control plane do not see each other: two that would
//! interfere if anything leaked (the same WasmPlugin names, one of them in
//! the root namespace, conflicting configurations, the same service and
//! host) run at the same time on one control plane, and both pass; after
//! them, none of their namespaces is left and istiod lists no gateway. On
//! each target in `PLUGPROOF_TARGETS` that shares a control plane (istio).

mod common;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Namespace;
use kube::api::Api;
use libtest_mimic::{Arguments, Failed, Trial};
use plugproof::components::apiserver::{TOKEN, URL};
use plugproof::components::istiod;
use plugproof::options::Options;
use plugproof::outcome::Status;
use plugproof::profiles::{profile, Isolation};
use plugproof::provision::ModuleCatalog;
use plugproof::run::Runner;
use plugproof::runtime::isolation::{is_isolated, rerun_isolated};
use plugproof::scenario::load_file;
use plugproof::targets::TargetSpec;

/// The namespaces the control plane has before any scenario.
const BASE: &[&str] = &["default", "kube-node-lease", "kube-public", "kube-system", "higress-system", "istio-system"];

fn main() -> ExitCode {
    plugproof::runtime::at_start();
    let mut options = common::options();
    if let plugproof::testing::Role::Daemon(code) = plugproof::testing::role(&mut options) {
        return code;
    }
    let args = Arguments::from_args();
    let trials = plugproof::testing::targets_from_env()
        .into_iter()
        .filter(|t| profile(t.profile, &options).isolation() == Isolation::Own)
        .map(|target| {
            let options = options.clone();
            let name = format!("{}/two-interfering-scenarios-at-once-both-pass-and-leave-nothing", target.name);
            let test = name.clone();
            Trial::test(name, move || {
                if is_isolated() {
                    two_at_once(&target, &options)
                } else {
                    let status = rerun_isolated(["--exact", &test, "--nocapture"].map(Into::into))?;
                    status.success().then_some(()).ok_or_else(|| format!("the isolated run failed ({status})").into())
                }
            })
        })
        .collect();
    libtest_mimic::run(&args, trials).exit_code()
}

fn two_at_once(target: &TargetSpec, options: &Options) -> Result<(), Failed> {
    let fixtures = common::workspace().join("harness/tests/fixtures/isolation");
    let catalog = ModuleCatalog::load(&options.plugins)?;
    let load = |name: &str| load_file(&fixtures.join(name), &fixtures, &catalog.names());
    let (a, b) = (load("a.yaml")?, load("b.yaml")?);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let runner = Runner::prepare(target, options, &catalog).await?;
        let runner = &runner;
        // When each one's steps ran: from after its stage and deploy to its end.
        let timed = |scenario| async move {
            let started = Instant::now();
            let outcome = runner.run(scenario).await;
            let steps_began = started + outcome.timings.stage + outcome.timings.deploy;
            (steps_began, Instant::now(), outcome)
        };
        let ((a_began, a_ended, ran_a), (b_began, b_ended, ran_b)) = futures::join!(timed(&a), timed(&b));
        let left = leftovers().await;
        runner.shutdown().await;
        for outcome in [&ran_a, &ran_b] {
            if outcome.status != Status::Passed {
                return Err(format!("{} failed: {:?}", outcome.id, outcome.status).into());
            }
        }
        println!("a: {:?}, b: {:?}", ran_a.timings, ran_b.timings);
        // Both ran at once: each one's steps began before the other's ended,
        // else nothing could have interfered.
        if a_began >= b_ended || b_began >= a_ended {
            return Err(format!(
                "the two scenarios' steps did not overlap (a: {:?} to {:?}, b: {:?} to {:?} after a's began)",
                Duration::ZERO,
                a_ended - a_began,
                b_began.saturating_duration_since(a_began),
                b_ended.saturating_duration_since(a_began)
            )
            .into());
        }
        left
    })
}

/// Namespaces beyond the control plane's own, and gateways istiod lists.
async fn leftovers() -> Result<(), Failed> {
    plugproof::http::install_crypto_provider();
    let mut config = kube::Config::new(URL.parse()?);
    config.accept_invalid_certs = true;
    config.auth_info.token = Some(TOKEN.to_owned().into());
    let namespaces: Api<Namespace> = Api::all(kube::Client::try_from(config)?);
    let names: Vec<String> =
        namespaces.list(&Default::default()).await?.items.into_iter().filter_map(|n| n.metadata.name).collect();
    let extra: Vec<&String> = names.iter().filter(|n| !BASE.contains(&n.as_str())).collect();
    if !extra.is_empty() {
        return Err(format!("namespaces left after the scenarios: {extra:?}").into());
    }
    if istiod::Debug::default().connected("plugproof-gateway").await? {
        return Err("istiod still lists a gateway after the scenarios".into());
    }
    Ok(())
}
