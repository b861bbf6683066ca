//! Files that hold secrets (the master key, the admin token, signing keys, generated API
//! keys): created with mode 0600 in directories with mode 0700, never replacing a file that
//! exists, and refused when group or others may access them. The permission bits are Unix's;
//! elsewhere files are created with the defaults and never refused.
//!
//! A secret that is loaded or else generated reads the file with [`open_private`] and, when
//! there is none, writes it with [`publish_new`]; when another process published one
//! meanwhile, that one is read and used.

use std::fs::{self, File};
use std::io::{self, Write as _};
use std::path::Path;

/// Why an existing secret file cannot be used.
#[derive(Debug)]
pub enum Unusable {
    /// It could not be opened.
    Open(io::Error),
    /// Its metadata could not be read.
    Inspect(io::Error),
    /// It is not a regular file.
    NotAFile,
    /// Group or others may access it: its permission bits (e.g. `0o644`).
    Exposed(u32),
}

/// Creates `dir` and its missing parents; `dir` itself, new or not, gets mode 0700.
///
/// # Errors
/// The failing IO operation's error.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Creates the new file `path` with mode 0600, open for writing.
///
/// # Errors
/// [`io::ErrorKind::AlreadyExists`] when `path` exists (it is never replaced), or the open's
/// error.
pub fn create_new(path: &Path) -> io::Result<File> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    options.open(path)
}

/// Writes `contents` into the new file `path` ([`create_new`]) and syncs it.
///
/// # Errors
/// As [`create_new`], or the write's or sync's error.
pub fn write_new(path: &Path, contents: &[u8]) -> io::Result<()> {
    let mut file = create_new(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

/// Writes `contents` as the new secret file `path`, whole or not at all: written and synced
/// beside it (`.<name>.tmp.<pid>`), then linked into place, which never replaces a file, and
/// the directory synced. `Ok(false)`, and nothing changed, when `path` exists: another process
/// published its secret first, and that one is in use.
///
/// # Errors
/// The failing step's error, saying what was done (`cannot write <file>: …`).
pub fn publish_new(path: &Path, contents: &[u8]) -> io::Result<bool> {
    let context = |e: io::Error, what: &str, file: &Path| {
        io::Error::new(e.kind(), format!("{what} {}: {e}", file.display()))
    };
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = path.with_file_name(format!(".{name}.tmp.{}", std::process::id()));
    match fs::remove_file(&tmp) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            return Err(context(e, "cannot remove", &tmp));
        }
        _ => {}
    }
    if let Err(e) = write_new(&tmp, contents) {
        let _ = fs::remove_file(&tmp);
        return Err(context(e, "cannot write", &tmp));
    }
    let linked = fs::hard_link(&tmp, path);
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(false),
        Err(e) => return Err(context(e, "cannot create", path)),
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        sync_dir(dir).map_err(|e| context(e, "cannot sync directory", dir))?;
    }
    Ok(true)
}

/// Opens the secret file `path` for reading once it is known to be a regular file that only
/// its owner may access; `Ok(None)` when it does not exist.
///
/// # Errors
/// [`Unusable`]: why the file cannot be used.
pub fn open_private(path: &Path) -> Result<Option<File>, Unusable> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Unusable::Open(e)),
    };
    let meta = file.metadata().map_err(Unusable::Inspect)?;
    if !meta.is_file() {
        return Err(Unusable::NotAFile);
    }
    match exposed_mode(&meta) {
        Some(mode) => Err(Unusable::Exposed(mode)),
        None => Ok(Some(file)),
    }
}

/// The permission bits of a file that group or others may access; `None` for a private file.
#[must_use]
pub fn exposed_mode(meta: &fs::Metadata) -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = meta.permissions().mode() & 0o777;
        (mode & 0o077 != 0).then_some(mode)
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        None
    }
}

/// Makes a new directory entry durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

#[cfg(test)]
mod tests;
