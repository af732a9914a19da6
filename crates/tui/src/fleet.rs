//! What the TUI needs from bangerd, behind a trait so key handling can be
//! tested against a fake.

use async_trait::async_trait;
use banger_api::{CreateVmRequest, Image, Progress, SshTarget, Vm, VmPort, VmStats};
use banger_client::DaemonClient;

pub type Result<T> = std::result::Result<T, String>;

/// Progress of a long action, as the daemon reports it.
pub type OnProgress<'a> = &'a mut (dyn FnMut(&Progress) + Send);

#[async_trait]
pub trait Fleet: Send + Sync {
    async fn list_vms(&self) -> Result<Vec<Vm>>;
    async fn vm_stats(&self, name: &str) -> Result<VmStats>;
    async fn vm_ports(&self, name: &str) -> Result<Vec<VmPort>>;
    async fn list_images(&self) -> Result<Vec<Image>>;
    async fn create(&self, request: &CreateVmRequest, on: OnProgress<'_>) -> Result<Vm>;
    async fn start(&self, name: &str, on: OnProgress<'_>) -> Result<Vm>;
    async fn restart(&self, name: &str, on: OnProgress<'_>) -> Result<Vm>;
    async fn stop(&self, name: &str) -> Result<Vm>;
    async fn suspend(&self, name: &str) -> Result<Vm>;
    async fn resume(&self, name: &str, on: OnProgress<'_>) -> Result<Vm>;
    async fn delete(&self, name: &str) -> Result<Vm>;
    async fn delete_image(&self, name: &str) -> Result<Image>;
    /// What `ssh` needs to reach a running VM.
    async fn ssh_target(&self, name: &str) -> Result<SshTarget>;
}

/// The error as a user reads it: message and, when there is one, the fix.
fn say(err: banger_client::ClientError) -> String {
    match err.api() {
        Some(api) => match &api.hint {
            Some(hint) => format!("{} (hint: {hint})", api.message),
            None => api.message.clone(),
        },
        None => err.to_string(),
    }
}

#[async_trait]
impl Fleet for DaemonClient {
    async fn list_vms(&self) -> Result<Vec<Vm>> {
        DaemonClient::list_vms(self).await.map_err(say)
    }
    async fn vm_stats(&self, name: &str) -> Result<VmStats> {
        DaemonClient::vm_stats(self, name).await.map_err(say)
    }
    async fn vm_ports(&self, name: &str) -> Result<Vec<VmPort>> {
        DaemonClient::vm_ports(self, name).await.map_err(say)
    }
    async fn list_images(&self) -> Result<Vec<Image>> {
        DaemonClient::list_images(self).await.map_err(say)
    }
    async fn create(&self, request: &CreateVmRequest, on: OnProgress<'_>) -> Result<Vm> {
        self.create_vm(request, on).await.map_err(say)
    }
    async fn start(&self, name: &str, on: OnProgress<'_>) -> Result<Vm> {
        self.start_vm(name, on).await.map_err(say)
    }
    async fn restart(&self, name: &str, on: OnProgress<'_>) -> Result<Vm> {
        self.restart_vm(name, on).await.map_err(say)
    }
    async fn stop(&self, name: &str) -> Result<Vm> {
        self.stop_vm(name, false).await.map_err(say)
    }
    async fn suspend(&self, name: &str) -> Result<Vm> {
        self.suspend_vm(name).await.map_err(say)
    }
    async fn resume(&self, name: &str, on: OnProgress<'_>) -> Result<Vm> {
        self.resume_vm(name, on).await.map_err(say)
    }
    async fn delete(&self, name: &str) -> Result<Vm> {
        self.delete_vm(name, false).await.map_err(say)
    }
    async fn delete_image(&self, name: &str) -> Result<Image> {
        DaemonClient::delete_image(self, name).await.map_err(say)
    }
    async fn ssh_target(&self, name: &str) -> Result<SshTarget> {
        DaemonClient::ssh_target(self, name).await.map_err(say)
    }
}
