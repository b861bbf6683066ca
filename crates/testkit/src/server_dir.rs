//! The servers' data directories, and the sweeping of those whose test process is gone.

use std::io;
use std::path::Path;

/// The file naming the test process that owns a server directory.
pub(crate) const OWNER_FILE: &str = "wbauth-testkit.owner";

/// A fresh directory for a server's data, `/tmp/PREFIXxxxx`, marked with the test process's id.
/// A server held in a `static` is never dropped, so its directory outlives the test binary;
/// each new one first removes the directories of the same prefix whose test process is gone.
pub(crate) fn server_dir(prefix: &str) -> io::Result<tempfile::TempDir> {
    let tmp = std::env::temp_dir();
    if let Ok(entries) = std::fs::read_dir(&tmp) {
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if !name.starts_with(prefix) {
                continue;
            }
            let owner = std::fs::read_to_string(entry.path().join(OWNER_FILE))
                .ok()
                .and_then(|pid| pid.trim().parse::<u32>().ok());
            // Only directories this kit marked, and whose test process has ended.
            if owner.is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists()) {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    let dir = tempfile::Builder::new().prefix(prefix).tempdir()?;
    std::fs::write(dir.path().join(OWNER_FILE), std::process::id().to_string())?;
    Ok(dir)
}
