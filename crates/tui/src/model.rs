//! Everything the TUI shows, and the messages that change it. Drawing reads
//! the model; keys and background work change it through [`Model::apply`].

use std::collections::BTreeMap;

use banger_api::{CreateVmRequest, Image, Vm, VmPort, VmState, VmStats};
use time::OffsetDateTime;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    Vms,
    Images,
}

/// An action that needs the daemon (or the terminal, for SSH).
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Start(String),
    Stop(String),
    Restart(String),
    Suspend(String),
    Resume(String),
    Delete(String),
    Ssh(String),
    Create(CreateVmRequest),
    DeleteImage(String),
}

impl Action {
    /// What the status line says while it runs.
    pub fn label(&self) -> String {
        match self {
            Action::Start(n) => format!("starting {n}"),
            Action::Stop(n) => format!("stopping {n}"),
            Action::Restart(n) => format!("restarting {n}"),
            Action::Suspend(n) => format!("suspending {n}"),
            Action::Resume(n) => format!("resuming {n}"),
            Action::Delete(n) => format!("deleting {n}"),
            Action::Ssh(n) => format!("ssh {n}"),
            Action::Create(r) => format!("creating {}", r.name.as_deref().unwrap_or("a VM")),
            Action::DeleteImage(n) => format!("deleting image {n}"),
        }
    }
}

/// The create form's fields, in order.
pub const FORM_FIELDS: [&str; 5] = ["name", "image", "memory MiB", "vCPUs", "disk"];

#[derive(Debug, Clone, PartialEq, Default)]
pub struct CreateForm {
    /// Values of [`FORM_FIELDS`]; empty means the daemon's default.
    pub values: [String; 5],
    pub nat: bool,
    /// 0..5 a text field, 5 the NAT toggle.
    pub focus: usize,
    pub error: Option<String>,
}

impl CreateForm {
    /// The request, or what is wrong with the input.
    pub fn request(&self) -> Result<CreateVmRequest, String> {
        let text = |i: usize| {
            let v = self.values[i].trim();
            (!v.is_empty()).then(|| v.to_string())
        };
        let name = text(0);
        if let Some(name) = &name {
            banger_api::names::validate_name(name).map_err(|e| e.to_string())?;
        }
        let number = |i: usize| -> Result<Option<u32>, String> {
            text(i)
                .map(|v| {
                    v.parse::<u32>().map_err(|_| {
                        format!("{} must be a whole number, not {v:?}", FORM_FIELDS[i])
                    })
                })
                .transpose()
        };
        let disk = text(4);
        if let Some(d) = &disk {
            banger_api::parse_size(d).map_err(|e| e.to_string())?;
        }
        Ok(CreateVmRequest {
            name,
            image: text(1),
            memory_mib: number(2)?,
            vcpu: number(3)?,
            disk_size: disk,
            nat: self.nat,
            cold: false,
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    Normal,
    /// Typing a name filter.
    Filter,
    Help,
    /// Waiting for y/n before a destructive action.
    Confirm(Action),
    Create(CreateForm),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Connection {
    Connecting,
    Connected,
    /// The daemon did not answer; the TUI keeps retrying.
    Unreachable(String),
}

/// A background action and its latest progress.
#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    pub id: u64,
    pub label: String,
    pub progress: Option<String>,
    pub fraction: Option<f32>,
}

/// What the daemon said in one refresh.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Snapshot {
    pub vms: Vec<Vm>,
    pub stats: Vec<VmStats>,
    pub images: Vec<Image>,
    /// Listening ports of running VMs whose agent answered, by VM name.
    pub ports: BTreeMap<String, Vec<VmPort>>,
}

/// A change to the model from outside the key handler.
#[derive(Debug, Clone, PartialEq)]
pub enum Msg {
    Refreshed(Result<Snapshot, String>),
    Progress {
        id: u64,
        message: String,
        fraction: Option<f32>,
    },
    Done {
        id: u64,
        result: Result<String, String>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    pub tab: Tab,
    pub vms: Vec<Vm>,
    pub stats: Vec<VmStats>,
    pub images: Vec<Image>,
    pub ports: BTreeMap<String, Vec<VmPort>>,
    /// Index into [`Model::visible_vms`].
    pub selected_vm: usize,
    pub selected_image: usize,
    pub filter: String,
    pub mode: Mode,
    pub connection: Connection,
    pub tasks: Vec<Task>,
    /// The last finished action's outcome: (text, is_error).
    pub message: Option<(String, bool)>,
    /// Last lines of the selected VM's console log.
    pub console: Vec<String>,
    pub socket: String,
    pub color: bool,
    pub now: OffsetDateTime,
    pub quit: bool,
    next_task: u64,
}

impl Model {
    pub fn new(socket: impl Into<String>, color: bool) -> Model {
        Model {
            tab: Tab::Vms,
            vms: Vec::new(),
            stats: Vec::new(),
            images: Vec::new(),
            ports: BTreeMap::new(),
            selected_vm: 0,
            selected_image: 0,
            filter: String::new(),
            mode: Mode::Normal,
            connection: Connection::Connecting,
            tasks: Vec::new(),
            message: None,
            console: Vec::new(),
            socket: socket.into(),
            color,
            now: OffsetDateTime::now_utc(),
            quit: false,
            next_task: 1,
        }
    }

    /// VMs whose name contains the filter, sorted by name.
    pub fn visible_vms(&self) -> Vec<&Vm> {
        let filter = self.filter.to_lowercase();
        self.vms
            .iter()
            .filter(|vm| vm.name.contains(&filter))
            .collect()
    }

    pub fn selected_vm(&self) -> Option<&Vm> {
        self.visible_vms().get(self.selected_vm).copied()
    }

    pub fn selected_image(&self) -> Option<&Image> {
        self.images.get(self.selected_image)
    }

    /// The VM's ports; `None` when unknown (stopped, or no agent answer).
    pub fn ports_of(&self, vm: &Vm) -> Option<&[VmPort]> {
        self.ports.get(&vm.name).map(Vec::as_slice)
    }

    pub fn stats_of(&self, vm: &Vm) -> Option<&VmStats> {
        self.stats.iter().find(|s| s.name == vm.name)
    }

    /// Names of the VMs that use an image.
    pub fn users_of(&self, image: &str) -> Vec<&str> {
        self.vms
            .iter()
            .filter(|vm| vm.image == image)
            .map(|vm| vm.name.as_str())
            .collect()
    }

    /// Registers a background task; returns its id.
    pub fn begin(&mut self, action: &Action) -> u64 {
        let id = self.next_task;
        self.next_task += 1;
        self.tasks.push(Task {
            id,
            label: action.label(),
            progress: None,
            fraction: None,
        });
        id
    }

    pub fn apply(&mut self, msg: Msg) {
        match msg {
            Msg::Refreshed(Ok(snapshot)) => {
                let keep = self.selected_vm().map(|vm| vm.name.clone());
                self.vms = snapshot.vms;
                self.vms.sort_by(|a, b| a.name.cmp(&b.name));
                self.stats = snapshot.stats;
                self.ports = snapshot.ports;
                self.images = snapshot.images;
                self.images.sort_by(|a, b| a.name.cmp(&b.name));
                self.connection = Connection::Connected;
                // The selection follows the VM, not the row number.
                if let Some(name) = keep {
                    if let Some(i) = self.visible_vms().iter().position(|vm| vm.name == name) {
                        self.selected_vm = i;
                    }
                }
                self.clamp();
            }
            Msg::Refreshed(Err(error)) => self.connection = Connection::Unreachable(error),
            Msg::Progress {
                id,
                message,
                fraction,
            } => {
                if let Some(task) = self.tasks.iter_mut().find(|t| t.id == id) {
                    task.progress = Some(message);
                    task.fraction = fraction;
                }
            }
            Msg::Done { id, result } => {
                self.tasks.retain(|t| t.id != id);
                self.message = Some(match result {
                    Ok(text) => (text, false),
                    Err(text) => (text, true),
                });
            }
        }
    }

    /// Keeps selections inside their lists.
    pub fn clamp(&mut self) {
        let vms = self.visible_vms().len();
        self.selected_vm = self.selected_vm.min(vms.saturating_sub(1));
        self.selected_image = self.selected_image.min(self.images.len().saturating_sub(1));
    }

    /// How long a running VM has been up, e.g. `3m`, `2h05m`, `4d3h`.
    pub fn uptime(&self, vm: &Vm) -> Option<String> {
        if vm.state != VmState::Running {
            return None;
        }
        let started = vm.started_at?;
        let secs = (self.now - started).whole_seconds().max(0);
        Some(match secs {
            s if s < 60 => format!("{s}s"),
            s if s < 3600 => format!("{}m", s / 60),
            s if s < 86400 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
            s => format!("{}d{}h", s / 86400, s % 86400 / 3600),
        })
    }
}
