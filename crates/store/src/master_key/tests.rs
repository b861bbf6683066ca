use std::fs;
use std::io;

use super::*;

const KEY_A: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
const KEY_B: &str = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";

fn master(hex: &str) -> MasterKey {
    MasterKey::from_source(&MasterKeySource::Env(hex.to_owned())).expect("valid key")
}

#[cfg(unix)]
#[test]
fn a_readable_master_key_file_is_refused() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join(MASTER_KEY_FILE);
    fs::write(&file, format!("{KEY_A}\n")).expect("write");
    fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).expect("chmod");
    match load_or_create_master_key(dir.path(), None) {
        Err(StoreError::Io(e)) => {
            assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
            let msg = e.to_string();
            assert!(msg.contains("chmod 600") && msg.contains("0644"), "{msg}");
            assert!(!msg.contains(KEY_A), "{msg}");
        }
        other => panic!("expected a permission error, got {other:?}"),
    }
    // Still there, untouched.
    assert_eq!(
        fs::read_to_string(&file).expect("read"),
        format!("{KEY_A}\n")
    );
    // Fixed permissions: accepted.
    fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).expect("chmod");
    let key = load_or_create_master_key(dir.path(), None).expect("load");
    assert!(key.origin().starts_with("file "));
    // The environment wins without reading the file at all.
    fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).expect("chmod");
    assert!(load_or_create_master_key(dir.path(), Some(KEY_B)).is_ok());
}

#[test]
fn malformed_master_keys_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad_values = [
        String::new(),
        "abc".to_owned(),
        KEY_A[..63].to_owned(),
        format!("{KEY_A}00"),
        format!("{}zz", &KEY_A[..62]),
        format!("{}é", &KEY_A[..62]),
    ];
    for value in &bad_values {
        match load_or_create_master_key(dir.path(), Some(value)) {
            Err(StoreError::WrongMasterKey(msg)) => {
                assert!(msg.contains(MASTER_KEY_ENV), "{msg}");
                assert!(msg.contains("64 hex characters"), "{msg}");
                if value.len() > 4 {
                    assert!(!msg.contains(value.as_str()), "{msg}");
                }
            }
            other => panic!("expected WrongMasterKey for {value:?}, got {other:?}"),
        }
    }
    // The environment was given: no file was generated.
    assert!(!dir.path().join(MASTER_KEY_FILE).exists());
    // Upper case and surrounding whitespace are fine.
    let upper = format!(" {}\n", KEY_A.to_ascii_uppercase());
    assert!(load_or_create_master_key(dir.path(), Some(&upper)).is_ok());

    // A malformed key file names the file.
    let file = dir.path().join(MASTER_KEY_FILE);
    fs::write(&file, "not a key\n").expect("write");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).expect("chmod");
    }
    match load_or_create_master_key(dir.path(), None) {
        Err(StoreError::WrongMasterKey(msg)) => {
            assert!(msg.contains(&file.display().to_string()), "{msg}");
        }
        other => panic!("expected WrongMasterKey, got {other:?}"),
    }
}

#[test]
fn debug_output_is_redacted() {
    let key = master(KEY_A);
    let shown = format!("{key:?}");
    assert!(shown.contains("<redacted>"), "{shown}");
    assert!(!shown.contains("0011223344"), "{shown}");
    let source = MasterKeySource::Env(KEY_A.to_owned());
    assert_eq!(format!("{source:?}"), "Env(<redacted>)");
}
