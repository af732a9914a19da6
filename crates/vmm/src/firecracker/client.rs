//! A typed client of Firecracker's API socket.

use std::path::PathBuf;

use banger_client::uds::{self, UdsError};
use hyper::Method;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::models::{
    ApiFault, BootSource, Drive, FullVmConfiguration, InstanceActionInfo, InstanceInfo, Logger,
    MachineConfiguration, Metrics, NetworkInterface, PartialDrive, SerialDevice,
    SnapshotCreateParams, SnapshotLoadParams, VmStateChange, Vsock,
};

#[derive(Debug, thiserror::Error)]
pub enum FirecrackerError {
    #[error(transparent)]
    Transport(#[from] UdsError),
    /// Firecracker answered with an error status and a fault message.
    #[error("{method} {path} was refused (HTTP {status}): {fault}")]
    Refused {
        method: Method,
        path: String,
        status: u16,
        fault: String,
    },
    /// Firecracker answered with a body that is not what its spec says.
    #[error("{path}: unexpected answer: {detail}")]
    BadAnswer { path: String, detail: String },
    /// Firecracker accepted the connection but did not answer (stopped or wedged).
    #[error("{method} {path}: no answer within {seconds}s")]
    Timeout {
        method: Method,
        path: String,
        seconds: u64,
    },
}

/// Every API call is bounded: a stopped (SIGSTOP) or wedged Firecracker must
/// not hang a stop that holds the VM's lock.
const CALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Writing or loading a snapshot moves the guest's whole memory through
/// the disk: seconds per GiB on a slow one.
const SNAPSHOT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

async fn bounded(
    socket: &std::path::Path,
    method: Method,
    path: &str,
    body: Option<Vec<u8>>,
    timeout: std::time::Duration,
) -> Result<(hyper::StatusCode, bytes::Bytes), FirecrackerError> {
    match tokio::time::timeout(timeout, uds::request(socket, method.clone(), path, body)).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(FirecrackerError::Timeout {
            method,
            path: path.to_string(),
            seconds: timeout.as_secs(),
        }),
    }
}

pub struct FirecrackerClient {
    socket: PathBuf,
}

impl FirecrackerClient {
    pub fn new(socket: PathBuf) -> Self {
        FirecrackerClient { socket }
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<bytes::Bytes, FirecrackerError> {
        self.call_within(method, path, body, CALL_TIMEOUT).await
    }

    async fn call_within(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        timeout: std::time::Duration,
    ) -> Result<bytes::Bytes, FirecrackerError> {
        let (status, bytes) = bounded(&self.socket, method.clone(), path, body, timeout).await?;
        if status.is_success() {
            return Ok(bytes);
        }
        let fault = serde_json::from_slice::<ApiFault>(&bytes)
            .map(|f| f.fault_message)
            .unwrap_or_else(|_| String::from_utf8_lossy(&bytes).into_owned());
        Err(FirecrackerError::Refused {
            method,
            path: path.to_string(),
            status: status.as_u16(),
            fault,
        })
    }

    async fn put<T: Serialize>(&self, path: &str, body: &T) -> Result<(), FirecrackerError> {
        let json = serde_json::to_vec(body).expect("models serialise");
        self.call(Method::PUT, path, Some(json)).await.map(drop)
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, FirecrackerError> {
        let bytes = self.call(Method::GET, path, None).await?;
        serde_json::from_slice(&bytes).map_err(|e| FirecrackerError::BadAnswer {
            path: path.to_string(),
            detail: e.to_string(),
        })
    }

    /// `GET /`: the instance's state and Firecracker's version.
    pub async fn instance_info(&self) -> Result<InstanceInfo, FirecrackerError> {
        self.get("/").await
    }

    /// `GET /vm/config`: the configuration the microVM runs with.
    pub async fn vm_config(&self) -> Result<FullVmConfiguration, FirecrackerError> {
        self.get("/vm/config").await
    }

    pub async fn put_logger(&self, logger: &Logger) -> Result<(), FirecrackerError> {
        self.put("/logger", logger).await
    }

    pub async fn put_metrics(&self, metrics: &Metrics) -> Result<(), FirecrackerError> {
        self.put("/metrics", metrics).await
    }

    pub async fn put_serial(&self, serial: &SerialDevice) -> Result<(), FirecrackerError> {
        self.put("/serial", serial).await
    }

    pub async fn put_machine_config(
        &self,
        config: &MachineConfiguration,
    ) -> Result<(), FirecrackerError> {
        self.put("/machine-config", config).await
    }

    pub async fn put_boot_source(&self, boot: &BootSource) -> Result<(), FirecrackerError> {
        self.put("/boot-source", boot).await
    }

    pub async fn put_drive(&self, drive: &Drive) -> Result<(), FirecrackerError> {
        self.put(&format!("/drives/{}", drive.drive_id), drive)
            .await
    }

    pub async fn put_network_interface(
        &self,
        iface: &NetworkInterface,
    ) -> Result<(), FirecrackerError> {
        self.put(&format!("/network-interfaces/{}", iface.iface_id), iface)
            .await
    }

    pub async fn put_vsock(&self, vsock: &Vsock) -> Result<(), FirecrackerError> {
        self.put("/vsock", vsock).await
    }

    /// `PATCH /drives/{id}` of a running microVM: a new backing file (or
    /// the same one, grown).
    pub async fn patch_drive(&self, drive: &PartialDrive) -> Result<(), FirecrackerError> {
        let json = serde_json::to_vec(drive).expect("models serialise");
        self.call(
            Method::PATCH,
            &format!("/drives/{}", drive.drive_id),
            Some(json),
        )
        .await
        .map(drop)
    }

    /// `PATCH /vm`: pause or resume the running microVM.
    pub async fn patch_vm(&self, change: &VmStateChange) -> Result<(), FirecrackerError> {
        let json = serde_json::to_vec(change).expect("models serialise");
        self.call(Method::PATCH, "/vm", Some(json)).await.map(drop)
    }

    /// `PUT /snapshot/create` of a paused microVM.
    pub async fn create_snapshot(
        &self,
        params: &SnapshotCreateParams,
    ) -> Result<(), FirecrackerError> {
        let json = serde_json::to_vec(params).expect("models serialise");
        self.call_within(
            Method::PUT,
            "/snapshot/create",
            Some(json),
            SNAPSHOT_TIMEOUT,
        )
        .await
        .map(drop)
    }

    /// `PUT /snapshot/load` into a fresh process.
    pub async fn load_snapshot(&self, params: &SnapshotLoadParams) -> Result<(), FirecrackerError> {
        let json = serde_json::to_vec(params).expect("models serialise");
        self.call_within(Method::PUT, "/snapshot/load", Some(json), SNAPSHOT_TIMEOUT)
            .await
            .map(drop)
    }

    pub async fn put_action(&self, action: &InstanceActionInfo) -> Result<(), FirecrackerError> {
        self.put("/actions", action).await
    }
}
