//! Turning every internal failure into an [`ApiError`] a user can act on.

use banger_api::{ApiError, ErrorCode};
use banger_host::HostError;
use banger_image::BuildError;
use banger_store::StoreError;
use banger_vmm::VmmError;

pub type OpResult<T> = Result<T, ApiError>;

pub fn host(err: HostError) -> ApiError {
    let hint = err.hint();
    let code = match err {
        HostError::MissingTool { .. } => ErrorCode::MissingTool,
        _ => ErrorCode::Internal,
    };
    let mut api = ApiError::new(code, err.to_string());
    api.hint = hint;
    api
}

pub fn store(err: StoreError) -> ApiError {
    match err {
        StoreError::Conflict(message) => ApiError::conflict(message),
        other => ApiError::internal(other.to_string()),
    }
}

pub fn vmm(err: VmmError) -> ApiError {
    match err {
        VmmError::Host(e) => host(e),
        VmmError::Failed(message) => ApiError::internal(message),
    }
}

pub fn build(err: BuildError) -> ApiError {
    match err {
        BuildError::Host(e) => host(e),
        BuildError::Failed(message) => ApiError::internal(message),
    }
}

pub fn store_ref(err: banger_store::vms::RefError) -> ApiError {
    match err {
        banger_store::vms::RefError::Store(e) => store(e),
        banger_store::vms::RefError::Api(e) => e,
    }
}
