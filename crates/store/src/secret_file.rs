//! Private files and directories: secrets on disk are created with mode 0600 in directories
//! created with mode 0700, never replace an existing file, and are refused when group or
//! others can read them.

use std::fs;
use std::io;
use std::path::Path;

use crate::StoreError;

/// An IO error with what was being done.
pub(crate) fn io_error(e: io::Error, context: &str) -> StoreError {
    StoreError::Io(io::Error::new(e.kind(), format!("{context}: {e}")))
}

#[cfg(unix)]
pub(crate) fn check_private(meta: &fs::Metadata, path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(StoreError::Io(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "master key file {path} is accessible by group or others (mode {mode:04o}); \
                 refusing to use it: run `chmod 600 {path}`",
                path = path.display()
            ),
        )));
    }
    Ok(())
}

#[cfg(not(unix))]
pub(crate) fn check_private(_meta: &fs::Metadata, _path: &Path) -> Result<(), StoreError> {
    Ok(())
}

/// Creates `dir` (and missing parents) with mode 0700; an existing directory is left as it is.
pub(crate) fn create_private_dir(dir: &Path) -> Result<(), StoreError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    builder
        .create(dir)
        .map_err(|e| io_error(e, &format!("cannot create directory {}", dir.display())))
}

/// Creates a new file with mode 0600 (fails when it exists).
pub(crate) fn create_private_file(path: &Path) -> io::Result<fs::File> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    options.open(path)
}

/// Makes a new directory entry durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    #[cfg(unix)]
    {
        fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io_error(e, &format!("cannot sync directory {}", dir.display())))?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}
