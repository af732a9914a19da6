//! The one place internal errors become API errors: each failure gets its
//! code (what a client can branch on), its message (the whole cause chain)
//! and its hint (the fix). Everything below the server returns its own
//! typed error.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use banger_api::names::NameError;
use banger_api::{ApiError, ErrorCode};
use banger_client::agent::Unusable;
use banger_host::HostError;
use banger_image::BuildError;
use banger_runtime::BundleError;
use banger_store::vms::RefError;
use banger_store::StoreError;
use banger_vmm::VmmError;

use crate::caps::CapError;
use crate::config::ConfigError;
use crate::drivers::DriverError;
use crate::images::ImageError;
use crate::journal::JournalError;
use crate::vms::VmError;

/// An error as the API reports it.
fn api(code: ErrorCode, err: &(dyn std::error::Error + 'static), hint: Option<String>) -> ApiError {
    let mut api = ApiError::new(code, banger_api::error::chain(err));
    api.hint = hint;
    api
}

fn host(err: &HostError) -> (ErrorCode, Option<String>) {
    let code = match err {
        HostError::MissingTool { .. } => ErrorCode::MissingTool,
        HostError::SeedTooLarge { .. } => ErrorCode::InvalidInput,
        _ => ErrorCode::Internal,
    };
    (code, err.hint())
}

/// The fix for a VM name already taken.
const NAME_TAKEN: &str = "pick another --name, or delete the existing VM with `banger vm delete`";

fn store(err: &StoreError) -> (ErrorCode, Option<String>) {
    match err {
        StoreError::NameTaken(_) => (ErrorCode::Conflict, Some(NAME_TAKEN.into())),
        StoreError::IdTaken(_) | StoreError::Collision { .. } => (ErrorCode::Conflict, None),
        StoreError::Sqlite(_) | StoreError::Corrupt(_) => (ErrorCode::Internal, None),
    }
}

fn reference(err: &RefError) -> (ErrorCode, Option<String>) {
    match err {
        RefError::Store(e) => store(e),
        RefError::NotFound(_) => (
            ErrorCode::NotFound,
            Some("`banger vm list` shows the VMs that exist".into()),
        ),
        RefError::Ambiguous { .. } => (
            ErrorCode::Ambiguous,
            Some("use the VM's name or a longer id prefix".into()),
        ),
    }
}

fn build(err: &BuildError) -> (ErrorCode, Option<String>) {
    let code = match err {
        BuildError::Host(e) => host(e).0,
        // A step's failure is classified by what failed in it.
        BuildError::Failed { source, .. } => build(source).0,
        _ if err.is_invalid_input() => ErrorCode::InvalidInput,
        _ => ErrorCode::Internal,
    };
    (code, err.hint())
}

fn vmm(err: &VmmError) -> (ErrorCode, Option<String>) {
    match err {
        VmmError::Host(e) => host(e),
        VmmError::CannotSave { .. } => (ErrorCode::Conflict, err.hint()),
        _ => (ErrorCode::Internal, err.hint()),
    }
}

fn forward(err: &crate::caps::forward::ForwardError) -> (ErrorCode, Option<String>) {
    use crate::caps::forward::ForwardError as F;
    match err {
        F::Taken { port, .. } => (
            ErrorCode::Conflict,
            Some(format!(
                "pick another host port (HOST:GUEST, e.g. {}:{port})",
                port.saturating_add(1)
            )),
        ),
        F::PortZero => (ErrorCode::InvalidInput, Some("use ports 1 to 65535".into())),
        F::NoSuch(_) => (
            ErrorCode::NotFound,
            Some("`banger vm show NAME` lists its forwards".into()),
        ),
        F::Store(e) => store(e),
    }
}

fn driver(err: &DriverError) -> (ErrorCode, Option<String>) {
    (ErrorCode::MissingTool, err.hint())
}

fn cap(err: &CapError) -> (ErrorCode, Option<String>) {
    match err {
        CapError::Host(e) => host(e),
        CapError::Store(e) => store(e),
        CapError::Journal(e) => journal(e),
        CapError::NoUplink { .. } => (
            ErrorCode::Conflict,
            Some("connect the host to a network (a default route), or use --no-nat".into()),
        ),
    }
}

fn journal(err: &JournalError) -> (ErrorCode, Option<String>) {
    match err {
        JournalError::Store(e) => store(e),
        JournalError::Undo { source, .. } => host(source),
    }
}

fn config(err: &ConfigError) -> (ErrorCode, Option<String>) {
    let code = match err {
        ConfigError::Read { .. } => ErrorCode::Internal,
        _ => ErrorCode::InvalidInput,
    };
    (code, err.hint())
}

fn name(_: &NameError) -> (ErrorCode, Option<String>) {
    (ErrorCode::InvalidInput, Some(NameError::HINT.into()))
}

fn agent(err: &Unusable) -> (ErrorCode, Option<String>) {
    (ErrorCode::Unavailable, Some(err.hint()))
}

fn image(err: &ImageError) -> (ErrorCode, Option<String>) {
    let code = match err {
        ImageError::Store(e) => return store(e),
        ImageError::Host(e) => return host(e),
        ImageError::Build(e) => return build(e),
        ImageError::Name(e) => return name(e),
        ImageError::NotFound(_) => ErrorCode::NotFound,
        ImageError::InUse { .. }
        | ImageError::WouldChange { .. }
        | ImageError::OverlaysOnRootfs { .. }
        | ImageError::Registered(_)
        | ImageError::Managed(_) => ErrorCode::Conflict,
        ImageError::NoAgent => ErrorCode::MissingTool,
        ImageError::BorrowsDefaultKernel(_)
        | ImageError::SizeTooSmall(_)
        | ImageError::Size(_)
        | ImageError::Packages { .. }
        | ImageError::BadFile { .. }
        | ImageError::NoKernel
        | ImageError::InitrdNeeded => ErrorCode::InvalidInput,
    };
    (code, err.hint())
}

fn vm(err: &VmError) -> (ErrorCode, Option<String>) {
    use VmError as E;
    let (code, hint): (ErrorCode, Option<String>) = match err {
        E::Store(e) => return store(e),
        E::Host(e) => return host(e),
        E::Vmm(e) => return vmm(e),
        E::Driver(e) => return driver(e),
        E::Cap(e) => return cap(e),
        E::Journal(e) => return journal(e),
        E::Image(e) => return image(e),
        E::Config(e) => return config(e),
        E::Ref(e) => return reference(e),
        E::Name(e) => return name(e),
        E::Agent(e) => return agent(e),
        E::Forward(e) => return forward(e),
        E::DiskSize(e) => (ErrorCode::InvalidInput, Some(e.hint().into())),
        E::VcpuRange { max, .. } => (
            ErrorCode::InvalidInput,
            Some(format!("use 1 to {max} vCPUs")),
        ),
        E::MemoryRange(_) => (
            ErrorCode::InvalidInput,
            Some("use between 128 and 1048576 MiB".into()),
        ),
        E::DiskTooSmall => (ErrorCode::InvalidInput, Some("e.g. --disk-size 8G".into())),
        E::NameTaken(_) => (ErrorCode::Conflict, Some(NAME_TAKEN.into())),
        E::NoFreeAddress(_) => (
            ErrorCode::Conflict,
            Some("delete unused VMs or configure a larger bridge_subnet".into()),
        ),
        E::ImageDeleted(_) => (
            ErrorCode::NotFound,
            Some("pick another --image, or build it again".into()),
        ),
        E::ImageGone { .. } => (ErrorCode::NotFound, None),
        E::ImageFileMissing { image, .. } => (
            ErrorCode::NotFound,
            Some(format!(
                "rebuild it with `banger image build --name {image}`"
            )),
        ),
        E::VmmStillRunning { vm, .. } => (
            ErrorCode::Conflict,
            Some(format!(
                "stop it with `banger vm stop --force {vm}` or `banger vm kill --signal KILL {vm}`"
            )),
        ),
        E::ExitedWhileBooting { .. } => (ErrorCode::Internal, None),
        E::NotReady { .. } => (
            ErrorCode::Internal,
            Some(
                "raise boot_timeout_secs in config.toml if this host is slow (software emulation)"
                    .into(),
            ),
        ),
        E::DeletedMeanwhile(_) => (ErrorCode::NotFound, None),
        E::StillCreating { vm, .. } => (
            ErrorCode::Conflict,
            Some(format!(
                "if the create failed, remove it with `banger vm delete {vm}`"
            )),
        ),
        E::UnknownSignal(_) => (
            ErrorCode::InvalidInput,
            Some("use a signal name such as TERM, KILL, INT, HUP, QUIT, USR1".into()),
        ),
        E::NoProcess { .. } => (ErrorCode::Conflict, None),
        E::NotStopped { vm, .. } => (
            ErrorCode::Conflict,
            Some(format!("run `banger vm stop {vm}` first")),
        ),
        E::DiskShrink { .. } => (
            ErrorCode::InvalidInput,
            Some("pass a size at least as large as the current one".into()),
        ),
        E::NotRunning { vm, .. } => (
            ErrorCode::Conflict,
            Some(format!("start it with `banger vm start {vm}`")),
        ),
        E::CloneNeedsStopped { vm, .. } => (
            ErrorCode::Conflict,
            Some(format!(
                "wait until it is running, or stop it with `banger vm stop {vm}`"
            )),
        ),
        E::CloneNeedsAgent { vm } => (
            ErrorCode::Conflict,
            Some(format!(
                "stop it with `banger vm stop {vm}` and clone it stopped, or rebuild its image (`banger image build`) for an agent"
            )),
        ),
        E::ImageChanged { image } => (
            ErrorCode::Conflict,
            Some(format!("run `banger image warm {image}` again for the image as it is now")),
        ),
        E::Takeover { vm, .. } => (
            ErrorCode::Internal,
            Some(format!(
                "{vm} was rolled back (a clone's source runs on); the daemon's log has the guest's answer, and `--cold` boots instead"
            )),
        ),
        E::NotSuspended { vm, .. } => (
            ErrorCode::Conflict,
            Some(format!("start it with `banger vm start {vm}`")),
        ),
        E::Suspended { vm } => (
            ErrorCode::Conflict,
            Some(format!(
                "resume it with `banger vm resume {vm}` and stop it then, or discard the saved state with `banger vm stop --force {vm}`"
            )),
        ),
        E::SavedStateUnusable { vm, .. } => (
            ErrorCode::Conflict,
            Some(format!(
                "discard it with `banger vm stop --force {vm}`; `banger vm start {vm}` then boots it cold (its disks are kept)"
            )),
        ),
    };
    (code, hint)
}

fn bundle(err: &BundleError) -> (ErrorCode, Option<String>) {
    let code = match err {
        BundleError::BadManifest { .. }
        | BundleError::Template(_)
        | BundleError::Checksum { .. } => ErrorCode::InvalidInput,
        BundleError::Download { .. } => ErrorCode::Unavailable,
        BundleError::Io { .. } | BundleError::Incomplete { .. } => ErrorCode::Internal,
    };
    (code, err.hint().map(String::from))
}

/// An error as an HTTP response.
pub struct Failure(pub ApiError);

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.0.code.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, Json(self.0)).into_response()
    }
}

impl From<ApiError> for Failure {
    fn from(e: ApiError) -> Failure {
        Failure(e)
    }
}

/// Each of the daemon's errors as an API error, by its classifier above.
macro_rules! edge {
    ($($error:ty => $classify:ident),* $(,)?) => {$(
        impl From<$error> for Failure {
            fn from(err: $error) -> Failure {
                let (code, hint) = $classify(&err);
                Failure(api(code, &err, hint))
            }
        }
    )*};
}

edge!(
    VmError => vm,
    ImageError => image,
    ConfigError => config,
    StoreError => store,
    BundleError => bundle,
);

/// An operation's task that panicked (its cause is in the daemon's log).
impl From<tokio::task::JoinError> for Failure {
    fn from(e: tokio::task::JoinError) -> Failure {
        Failure(ApiError::internal(format!(
            "the operation failed unexpectedly ({e}); see bangerd.log"
        )))
    }
}

impl From<Failure> for ApiError {
    fn from(f: Failure) -> ApiError {
        f.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use banger_api::VmState;

    #[test]
    fn each_failure_gets_its_code_cause_and_fix() {
        let api = |e: VmError| Failure::from(e).0;
        let err = api(VmError::NotRunning {
            vm: "web".into(),
            state: VmState::Stopped,
            what: "ports are listed for running VMs",
        });
        assert_eq!(err.code, ErrorCode::Conflict);
        assert_eq!(
            err.message,
            "VM web is stopped, not running: ports are listed for running VMs"
        );
        assert_eq!(
            err.hint.as_deref(),
            Some("start it with `banger vm start web`")
        );

        // A wrapped cause is part of the message, and its hint comes along.
        let missing = HostError::MissingTool {
            tool: "mkfs.ext4".into(),
            package: Some("e2fsprogs"),
        };
        let err = api(VmError::Image(ImageError::Host(missing)));
        assert_eq!(err.code, ErrorCode::MissingTool);
        assert!(err.hint.unwrap().contains("apt-get install e2fsprogs"));

        let io = std::io::Error::from_raw_os_error(13);
        let err = api(VmError::Host(HostError::io("cannot create /x", io)));
        assert_eq!(err.code, ErrorCode::Internal);
        assert_eq!(
            err.message,
            "cannot create /x: Permission denied (os error 13)"
        );

        let err = api(VmError::Ref(RefError::NotFound("nope".into())));
        assert_eq!(err.code, ErrorCode::NotFound);
    }

    #[test]
    fn a_suspended_vm_names_the_way_out() {
        let api = |e: VmError| Failure::from(e).0;
        let err = api(VmError::SavedStateUnusable {
            vm: "old".into(),
            reason: "it was written by banger 0.0.1".into(),
        });
        assert_eq!(err.code, ErrorCode::Conflict);
        assert!(err.hint.unwrap().contains("banger vm stop --force old"));
        let err = api(VmError::Suspended { vm: "web".into() });
        assert!(err.hint.unwrap().contains("banger vm resume web"));
        // QEMU's refusal to save a guest with the vsock names the choices.
        let err = api(VmError::Vmm(banger_vmm::VmmError::CannotSave {
            vmm: banger_api::VmmKind::Qemu,
            reason: "non-migratable device".into(),
        }));
        assert!(
            err.hint.unwrap().contains("firecracker"),
            "{:?}",
            err.message
        );
    }
}
