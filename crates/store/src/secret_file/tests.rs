use std::fs;

use super::*;

#[test]
fn a_published_secret_never_replaces_one_that_exists() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("secret");
    assert!(publish_new(&path, b"first").expect("publish"));
    assert!(!publish_new(&path, b"second").expect("publish again"));
    assert_eq!(fs::read(&path).expect("read"), b"first");
    // No temporary file left behind.
    assert_eq!(fs::read_dir(dir.path()).expect("dir").count(), 1);
    assert_eq!(
        write_new(&path, b"third").map_err(|e| e.kind()),
        Err(io::ErrorKind::AlreadyExists)
    );
    assert!(open_private(&path).expect("private").is_some());
    assert!(
        open_private(&dir.path().join("missing"))
            .expect("absent")
            .is_none()
    );
    assert!(matches!(open_private(dir.path()), Err(Unusable::NotAFile)));
}

#[cfg(unix)]
#[test]
fn secret_files_are_private_and_exposed_ones_refused() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().expect("tempdir");
    let private = dir.path().join("private");
    create_private_dir(&private).expect("dir");
    let mode = |path: &Path| fs::metadata(path).expect("meta").permissions().mode() & 0o777;
    assert_eq!(mode(&private), 0o700);
    let path = private.join("secret");
    write_new(&path, b"s3cret").expect("write");
    assert_eq!(mode(&path), 0o600);
    fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).expect("chmod");
    assert!(matches!(open_private(&path), Err(Unusable::Exposed(0o640))));
    // An existing directory is made private too.
    fs::set_permissions(&private, fs::Permissions::from_mode(0o755)).expect("chmod");
    create_private_dir(&private).expect("again");
    assert_eq!(mode(&private), 0o700);
}
