//! Bad input to the container runtime gets an error that says what to do:
//! no engine, an image that cannot be found or pulled, an image without the
//! Envoy or the agent the target needs, and an image whose Envoy is not the
//! one the target names. Each is `plugproof provision --target TARGET` (which
//! resolves the target's image and asks it what it holds); needs a
//! container engine (`ci/setup-containers`).

mod common;

use std::process::{Command, Output};

use testcontainers::core::BuildImageOptions;
use testcontainers::runners::AsyncBuilder;
use testcontainers::GenericBuildableImage;

fn provision(target: &str, env: &[(&str, &str)]) -> Output {
    Command::new(common::plugproof_binary())
        .args(["provision", "--target", target])
        .envs(env.iter().copied())
        .output()
        .expect("plugproof runs")
}

/// Provisioning fails with exit code 2 and this in its message.
fn refused(output: &Output, words: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(words), "{stderr}");
}

/// The reference of the Envoy image plugproof builds, as provisioning it says.
fn envoy_image() -> String {
    let output = provision("envoy+container", &[]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
    let after = stdout.split("in containers of ").nth(1).expect("the target names its image");
    after.split_whitespace().next().expect("a reference").to_owned()
}

#[test]
fn no_engine() {
    let output = provision("envoy+container", &[("DOCKER_HOST", "unix:///nonexistent/engine.sock")]);
    refused(&output, "no container engine answers at unix:///nonexistent/engine.sock");
    refused(&output, "or run the target as host processes (drop `+container`)");
}

#[test]
fn an_image_that_cannot_be_found_or_pulled() {
    let output = provision("envoy+envoy-image@localhost/plugproof-test/missing:none", &[]);
    refused(&output, "image localhost/plugproof-test/missing:none: not here, and it cannot be pulled");
}

#[test]
fn an_envoy_image_is_no_gateway_image() {
    let output = provision(&format!("istio+gateway-image@{}", envoy_image()), &[]);
    refused(&output, "has no pilot-agent at /usr/local/bin/pilot-agent");
}

#[test]
fn an_image_whose_envoy_is_not_the_one_named() {
    let output = provision(&format!("envoy@1.36.4+envoy-image@{}", envoy_image()), &[]);
    refused(&output, "runs Envoy 1.40.0, but the target names Envoy 1.36.4");
}

#[tokio::test]
async fn an_image_without_envoy() {
    plugproof::runtime::container::engine::default_to_podman();
    let _built = GenericBuildableImage::new("localhost/plugproof-test/no-envoy", "1")
        .with_dockerfile_string("FROM scratch\nCOPY nothing /nothing\n")
        .with_data(Vec::new(), "./nothing")
        .build_image_with(BuildImageOptions::new().with_skip_if_exists(true))
        .await
        .expect("an image without Envoy builds");
    let output = provision("envoy+envoy-image@localhost/plugproof-test/no-envoy:1", &[]);
    refused(&output, "image localhost/plugproof-test/no-envoy:1 has no Envoy at /usr/local/bin/envoy");
}
