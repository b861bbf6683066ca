//! Running a server as a system user of its own (PostgreSQL refuses to run as root).

use std::io;
use std::path::Path;
use std::process::{Command, Stdio};

pub(crate) fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.stdout.trim_ascii() == b"0")
}

fn user_exists(user: &str) -> io::Result<bool> {
    Ok(Command::new("id")
        .arg("-u")
        .arg(user)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?
        .success())
}

pub(crate) fn ensure_system_user(user: &str) -> io::Result<()> {
    if user_exists(user)? {
        return Ok(());
    }
    let out = Command::new("useradd")
        .args([
            "--system",
            "--no-create-home",
            "--shell",
            "/usr/sbin/nologin",
            user,
        ])
        .output()?;
    // Another test binary may have created it at the same moment.
    if user_exists(user)? {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "cannot create the system user {user}: {}",
            String::from_utf8_lossy(&out.stderr)
        )))
    }
}

pub(crate) fn chown(path: &Path, user: &str) -> io::Result<()> {
    let status = Command::new("chown").arg(user).arg(path).status()?;
    if status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "chown {user} {} failed",
            path.display()
        )))
    }
}

pub(crate) fn set_mode_0700(path: &Path) -> io::Result<()> {
    set_mode(path, 0o700)
}

pub(crate) fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

/// `program` as a command, run as `user` through `runuser` when there is one.
pub(crate) fn prefixed(user: Option<&str>, program: &Path) -> Command {
    match user {
        Some(user) => {
            let mut command = Command::new("runuser");
            command.args(["-u", user, "--"]).arg(program);
            command
        }
        None => Command::new(program),
    }
}
