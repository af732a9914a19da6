//! The typed client of bangerd's API.

use std::path::{Path, PathBuf};

use banger_api::{
    ApiError, BuildImageRequest, Check, CreateVmRequest, DaemonStatus, ErrorCode, Event,
    FetchRuntimeRequest, Image, KillRequest, Progress, RuntimeInfo, SshTarget, UpdateVmRequest, Vm,
    VmPort, VmStats, VmmStatus, API_PREFIX,
};
use http_body_util::BodyExt;
use hyper::Method;
use serde::de::DeserializeOwned;

use crate::uds::{self, UdsError};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The daemon answered with an error.
    #[error("{0}")]
    Api(ApiError),
    /// The daemon could not be reached.
    #[error(transparent)]
    Transport(#[from] UdsError),
    #[error("unexpected answer from bangerd: {0}")]
    Protocol(String),
}

impl ClientError {
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            ClientError::Api(e) => Some(e),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct DaemonClient {
    socket: PathBuf,
}

impl DaemonClient {
    pub fn new(socket: impl Into<PathBuf>) -> Self {
        DaemonClient {
            socket: socket.into(),
        }
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<T, ClientError> {
        let (status, bytes) =
            uds::request(&self.socket, method, &format!("{API_PREFIX}{path}"), body).await?;
        if !status.is_success() {
            return Err(ClientError::Api(decode_error(status.as_u16(), &bytes)));
        }
        serde_json::from_slice(&bytes)
            .map_err(|e| ClientError::Protocol(format!("{e}: {}", String::from_utf8_lossy(&bytes))))
    }

    /// A long operation: reports each progress event, returns the result.
    async fn stream<T: DeserializeOwned>(
        &self,
        path: &str,
        body: Vec<u8>,
        on_progress: &mut (dyn FnMut(&Progress) + Send),
    ) -> Result<T, ClientError> {
        let response = uds::send(
            &self.socket,
            Method::POST,
            &format!("{API_PREFIX}{path}"),
            Some(body),
        )
        .await?;
        let status = response.status();
        let mut body = response.into_body();
        if !status.is_success() {
            let bytes = body
                .collect()
                .await
                .map_err(|e| ClientError::Protocol(e.to_string()))?
                .to_bytes();
            return Err(ClientError::Api(decode_error(status.as_u16(), &bytes)));
        }
        let mut buffer: Vec<u8> = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| ClientError::Protocol(format!("stream broken: {e}")))?;
            let Some(data) = frame.data_ref() else {
                continue;
            };
            buffer.extend_from_slice(data);
            while let Some(newline) = buffer.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = buffer.drain(..=newline).collect();
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                match serde_json::from_slice::<Event<T>>(&line) {
                    Ok(Event::Progress(p)) => on_progress(&p),
                    Ok(Event::Done { result }) => return Ok(result),
                    Ok(Event::Failed { error }) => return Err(ClientError::Api(error)),
                    Err(e) => return Err(ClientError::Protocol(format!("bad event: {e}"))),
                }
            }
        }
        Err(ClientError::Protocol(
            "the daemon closed the stream before the operation finished; see its log".into(),
        ))
    }

    pub async fn status(&self) -> Result<DaemonStatus, ClientError> {
        self.call(Method::GET, "/daemon", None).await
    }

    pub async fn shutdown(&self) -> Result<serde_json::Value, ClientError> {
        self.call(Method::POST, "/daemon/shutdown", None).await
    }

    /// The daemon's readiness checks of this host.
    pub async fn doctor(&self) -> Result<Vec<Check>, ClientError> {
        self.call(Method::GET, "/doctor", None).await
    }

    /// The runtime bundle the daemon uses.
    pub async fn runtime(&self) -> Result<RuntimeInfo, ClientError> {
        self.call(Method::GET, "/runtime", None).await
    }

    /// Installs the bundle `request.manifest` describes, where the daemon looks.
    pub async fn fetch_runtime(
        &self,
        request: &FetchRuntimeRequest,
    ) -> Result<RuntimeInfo, ClientError> {
        self.call(Method::POST, "/runtime", Some(to_json(request)))
            .await
    }

    pub async fn list_vms(&self) -> Result<Vec<Vm>, ClientError> {
        self.call(Method::GET, "/vms", None).await
    }

    pub async fn get_vm(&self, reference: &str) -> Result<Vm, ClientError> {
        self.call(Method::GET, &format!("/vms/{}", encode(reference)), None)
            .await
    }

    pub async fn create_vm(
        &self,
        request: &CreateVmRequest,
        on_progress: &mut (dyn FnMut(&Progress) + Send),
    ) -> Result<Vm, ClientError> {
        self.stream("/vms", to_json(request), on_progress).await
    }

    pub async fn start_vm(
        &self,
        reference: &str,
        on_progress: &mut (dyn FnMut(&Progress) + Send),
    ) -> Result<Vm, ClientError> {
        self.stream(
            &format!("/vms/{}/start", encode(reference)),
            Vec::new(),
            on_progress,
        )
        .await
    }

    pub async fn clone_vm(
        &self,
        reference: &str,
        request: &banger_api::CloneVmRequest,
        on_progress: &mut (dyn FnMut(&Progress) + Send),
    ) -> Result<Vm, ClientError> {
        self.stream(
            &format!("/vms/{}/clone", encode(reference)),
            serde_json::to_vec(request).expect("request serialises"),
            on_progress,
        )
        .await
    }

    pub async fn suspend_vm(&self, reference: &str) -> Result<Vm, ClientError> {
        self.call(
            Method::POST,
            &format!("/vms/{}/suspend", encode(reference)),
            None,
        )
        .await
    }

    pub async fn resume_vm(
        &self,
        reference: &str,
        on_progress: &mut (dyn FnMut(&Progress) + Send),
    ) -> Result<Vm, ClientError> {
        self.stream(
            &format!("/vms/{}/resume", encode(reference)),
            Vec::new(),
            on_progress,
        )
        .await
    }

    pub async fn stop_vm(&self, reference: &str, force: bool) -> Result<Vm, ClientError> {
        self.call(
            Method::POST,
            &format!("/vms/{}/stop?force={force}", encode(reference)),
            None,
        )
        .await
    }

    pub async fn delete_vm(&self, reference: &str, force: bool) -> Result<Vm, ClientError> {
        self.call(
            Method::DELETE,
            &format!("/vms/{}?force={force}", encode(reference)),
            None,
        )
        .await
    }

    pub async fn restart_vm(
        &self,
        reference: &str,
        on_progress: &mut (dyn FnMut(&Progress) + Send),
    ) -> Result<Vm, ClientError> {
        self.stream(
            &format!("/vms/{}/restart", encode(reference)),
            Vec::new(),
            on_progress,
        )
        .await
    }

    pub async fn kill_vm(&self, reference: &str, request: &KillRequest) -> Result<Vm, ClientError> {
        self.call(
            Method::POST,
            &format!("/vms/{}/kill", encode(reference)),
            Some(to_json(request)),
        )
        .await
    }

    pub async fn update_vm(
        &self,
        reference: &str,
        request: &UpdateVmRequest,
    ) -> Result<Vm, ClientError> {
        self.call(
            Method::PATCH,
            &format!("/vms/{}", encode(reference)),
            Some(to_json(request)),
        )
        .await
    }

    pub async fn vm_stats(&self, reference: &str) -> Result<VmStats, ClientError> {
        self.call(
            Method::GET,
            &format!("/vms/{}/stats", encode(reference)),
            None,
        )
        .await
    }

    /// Copies the file_sync entries into a running VM again; the warnings.
    pub async fn sync_vm(&self, vm: &str) -> Result<Vec<String>, ClientError> {
        self.call(Method::POST, &format!("/vms/{}/sync", encode(vm)), None)
            .await
    }

    pub async fn forwards(&self, vm: &str) -> Result<Vec<banger_api::Forward>, ClientError> {
        self.call(Method::GET, &format!("/vms/{}/forwards", encode(vm)), None)
            .await
    }

    pub async fn add_forward(
        &self,
        vm: &str,
        forward: &banger_api::Forward,
    ) -> Result<Vec<banger_api::Forward>, ClientError> {
        self.call(
            Method::POST,
            &format!("/vms/{}/forwards", encode(vm)),
            Some(serde_json::to_vec(forward).expect("requests serialise")),
        )
        .await
    }

    pub async fn remove_forward(
        &self,
        vm: &str,
        proto: banger_api::Proto,
        host_port: u16,
    ) -> Result<Vec<banger_api::Forward>, ClientError> {
        self.call(
            Method::DELETE,
            &format!("/vms/{}/forwards/{proto}/{host_port}", encode(vm)),
            None,
        )
        .await
    }

    /// Deletes (or with `dry_run` lists) VMs stopped for longer than that.
    pub async fn prune(&self, request: &banger_api::PruneRequest) -> Result<Vec<Vm>, ClientError> {
        self.call(
            Method::POST,
            "/prune",
            Some(serde_json::to_vec(request).expect("requests serialise")),
        )
        .await
    }

    /// Every VM's ssh_config Host block, and the file that holds them.
    pub async fn ssh_config(&self) -> Result<banger_api::SshConfig, ClientError> {
        self.call(Method::GET, "/ssh-config", None).await
    }

    /// What the VM's VMM says of itself, asked live.
    pub async fn vm_vmm(&self, reference: &str) -> Result<VmmStatus, ClientError> {
        self.call(
            Method::GET,
            &format!("/vms/{}/vmm", encode(reference)),
            None,
        )
        .await
    }

    /// The guest's listening sockets as host endpoints (through its agent).
    pub async fn vm_ports(&self, reference: &str) -> Result<Vec<VmPort>, ClientError> {
        self.call(
            Method::GET,
            &format!("/vms/{}/ports", encode(reference)),
            None,
        )
        .await
    }

    pub async fn ssh_target(&self, reference: &str) -> Result<SshTarget, ClientError> {
        self.call(
            Method::GET,
            &format!("/vms/{}/ssh", encode(reference)),
            None,
        )
        .await
    }

    pub async fn list_images(&self) -> Result<Vec<Image>, ClientError> {
        self.call(Method::GET, "/images", None).await
    }

    pub async fn register_image(
        &self,
        request: &banger_api::RegisterImageRequest,
    ) -> Result<Image, ClientError> {
        self.call(
            Method::PUT,
            &format!("/images/{}", encode(&request.name)),
            Some(to_json(request)),
        )
        .await
    }

    pub async fn get_image(&self, name: &str) -> Result<Image, ClientError> {
        self.call(Method::GET, &format!("/images/{}", encode(name)), None)
            .await
    }

    pub async fn delete_image(&self, name: &str) -> Result<Image, ClientError> {
        self.call(Method::DELETE, &format!("/images/{}", encode(name)), None)
            .await
    }

    pub async fn build_image(
        &self,
        request: &BuildImageRequest,
        on_progress: &mut (dyn FnMut(&Progress) + Send),
    ) -> Result<Image, ClientError> {
        self.stream("/images", to_json(request), on_progress).await
    }
}

impl DaemonClient {
    /// Boots a template guest of `image`, saves it, and makes it the
    /// image's warm snapshot (`image warm`).
    pub async fn warm_image(
        &self,
        image: &str,
        on_progress: &mut (dyn FnMut(&Progress) + Send),
    ) -> Result<Image, ClientError> {
        self.stream(
            &format!("/images/{image}/warm"),
            b"{}".to_vec(),
            on_progress,
        )
        .await
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("API requests serialise")
}

fn decode_error(status: u16, bytes: &[u8]) -> ApiError {
    serde_json::from_slice(bytes).unwrap_or_else(|_| {
        ApiError::new(
            ErrorCode::Internal,
            format!(
                "bangerd answered HTTP {status}: {}",
                String::from_utf8_lossy(bytes)
            ),
        )
    })
}

/// VM refs are names or hex id prefixes; anything else is percent-encoded so
/// a hostile ref cannot change the request path.
fn encode(reference: &str) -> String {
    let mut out = String::new();
    for byte in reference.bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_' {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn refs_cannot_escape_the_path() {
        assert_eq!(super::encode("calm-otter"), "calm-otter");
        assert_eq!(
            super::encode("../daemon/shutdown"),
            "%2E%2E%2Fdaemon%2Fshutdown"
        );
    }
}
