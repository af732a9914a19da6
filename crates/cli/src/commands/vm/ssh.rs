//! `banger vm ssh`: the system `ssh` with the arguments the daemon's
//! target gives (the same ones the TUI uses), in the foreground.

use std::os::unix::process::CommandExt;
use std::process::ExitCode;

use anyhow::Context;
use banger_client::DaemonClient;

use banger_tui::foreground::run_foreground;

pub async fn run(client: &DaemonClient, vm: &str, command: &[String]) -> anyhow::Result<ExitCode> {
    let target = client.ssh_target(vm).await?;
    let mut ssh = std::process::Command::new("ssh");
    ssh.args(target.ssh_args());
    if !command.is_empty() {
        ssh.arg(remote_command(command)?);
        // Replace this process so the terminal, signals and exit code are ssh's.
        let err = ssh.exec();
        return Err(err).context("cannot run ssh (apt-get install openssh-client)");
    }
    // An interactive shell: wait for it, then remind that the VM runs on.
    let code = run_foreground(ssh).context("cannot run ssh (apt-get install openssh-client)")?;
    if code != 255 {
        if let Ok(vm) = client.get_vm(vm).await {
            super::guest::ssh_reminder(&vm.dir, &vm.name).await;
        }
    }
    Ok(ExitCode::from(code))
}

/// ssh hands the remote shell one string; quote each argument so the guest
/// runs exactly the argv the user typed, as a local command would.
fn remote_command(args: &[String]) -> anyhow::Result<String> {
    shlex::try_join(args.iter().map(String::as_str))
        .context("a command argument contains a NUL byte")
}

#[cfg(test)]
mod tests {
    use super::remote_command;

    #[test]
    fn remote_commands_keep_argument_boundaries() {
        // What the guest's shell makes of the string is what matters.
        let args: Vec<String> = ["sh", "-c", "echo a; echo 'b c' $HOME", "", "x\"y"]
            .map(String::from)
            .to_vec();
        let line = remote_command(&args).unwrap();
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("printf '%s\\n' {line}"))
            .output()
            .unwrap();
        let expected: String = args.iter().map(|a| format!("{a}\n")).collect();
        assert_eq!(String::from_utf8(out.stdout).unwrap(), expected);
        assert_eq!(
            remote_command(&["cat".into(), "/etc/hostname".into()]).unwrap(),
            "cat /etc/hostname"
        );
    }
}
