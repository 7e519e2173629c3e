//! One control plane: etcd (started from the kit's template, with istio's
//! CRDs in place), the kube-apiserver over it, and istiod reading it. A run
//! boots one and every scenario shares it, each in namespaces of its own
//! (see `profiles::Names`). Its ports are fixed: one control plane at a time
//! runs in a network namespace.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::template;
use crate::components::apiserver::{ApiServer, Serving, TOKEN, URL};
use crate::components::etcd::Etcd;
use crate::components::istiod::{Istiod, HTTP_ADDRESS, XDS_ADDRESS};
use crate::files::copy_tree;
use crate::options::Endpoints;
use crate::profiles::{Clock, DeployError};
use crate::provision::IstioKit;

pub struct ControlPlane {
    // Declared in stopping order: istiod first, etcd last.
    istiod: Istiod,
    apiserver: ApiServer,
    etcd: Etcd,
    pub endpoints: Endpoints,
    /// How long each part took to start.
    pub boot: Vec<(&'static str, Duration)>,
}

impl ControlPlane {
    /// Boots etcd, the apiserver and istiod, keeping their data and logs in `dir`.
    pub async fn start(kit: &IstioKit, dir: &Path) -> Result<Self, DeployError> {
        std::fs::create_dir_all(dir).map_err(DeployError::io("cannot create the control plane's folder"))?;
        let template = template::etcd_template(kit, &dir.join("template")).await?;
        let mut clock = Clock::default();
        let data = dir.join("etcd");
        copy_tree(&template, &data, &[]).map_err(DeployError::io("cannot copy the etcd template"))?;
        let etcd = Etcd::start(&kit.etcd, &data, &dir.join("etcd.log")).await?;
        clock.lap("etcd");
        let apiserver =
            ApiServer::start(&kit.apiserver, &kit.credentials, &dir.join("apiserver"), Serving::Loopback).await?;
        clock.lap("kube-apiserver");
        let kubeconfig = write_kubeconfig(dir)?;
        let istiod = Istiod::start(&kit.discovery, &kubeconfig, dir).await?;
        clock.lap("istiod");
        let endpoints = Endpoints {
            xds: XDS_ADDRESS.to_owned(),
            debug: HTTP_ADDRESS.to_owned(),
            debug_token: None,
            pin: kit.pin.clone(),
        };
        Ok(ControlPlane { istiod, apiserver, etcd, endpoints, boot: clock.laps })
    }

    pub fn istiod(&self) -> &Istiod {
        &self.istiod
    }

    pub async fn stop(self) {
        self.istiod.stop().await;
        self.apiserver.stop().await;
        self.etcd.stop().await;
    }
}

fn write_kubeconfig(dir: &Path) -> Result<PathBuf, DeployError> {
    let path = dir.join("kubeconfig");
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: local\n  cluster: {{server: \"{URL}\", insecure-skip-tls-verify: true}}\n\
         users:\n- name: admin\n  user: {{token: {TOKEN}}}\ncontexts:\n- name: local\n  context: {{cluster: local, user: admin}}\n\
         current-context: local\n"
    );
    std::fs::write(&path, text).map_err(DeployError::io("cannot write the kubeconfig"))?;
    Ok(path)
}
