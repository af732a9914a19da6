//! A host resource recorded in the journal.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceKind {
    /// A directory the daemon created; removed recursively.
    Dir,
    /// A file the daemon created.
    File,
    /// A TAP device.
    Tap,
    /// A VMM process, recorded as `pid:start_time` so a reused PID is not mistaken for it.
    Process,
    /// A process serving a device for the VMM (QEMU's vsock helper), same format.
    Helper,
}

impl ResourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceKind::Dir => "dir",
            ResourceKind::File => "file",
            ResourceKind::Tap => "tap",
            ResourceKind::Process => "process",
            ResourceKind::Helper => "helper",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<ResourceKind> {
        match s {
            "dir" => Some(ResourceKind::Dir),
            "file" => Some(ResourceKind::File),
            "tap" => Some(ResourceKind::Tap),
            "process" => Some(ResourceKind::Process),
            "helper" => Some(ResourceKind::Helper),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    pub id: i64,
    pub vm_id: String,
    pub kind: ResourceKind,
    pub value: String,
}
