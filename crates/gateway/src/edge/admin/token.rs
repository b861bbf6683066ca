//! The admin API's bearer token: from `WBAUTH_ADMIN_TOKEN`, or a file in the data directory
//! generated on first start (mode 0600). Wiped from memory when dropped.

use std::io::Read as _;
use std::path::{Path as FsPath, PathBuf};

use subtle::ConstantTimeEq as _;
use zeroize::Zeroizing;

use super::{ADMIN_TOKEN_ENV, ADMIN_TOKEN_FILE, MIN_ADMIN_TOKEN_LEN};
use crate::error::GatewayError;
use wbauth_store::secret_file::{self, Unusable};

/// The bearer token of the admin API. Wiped from memory when dropped; `Debug` hides it.
pub(crate) struct AdminToken {
    token: Zeroizing<String>,
    origin: String,
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminToken")
            .field("token", &"<redacted>")
            .field("origin", &self.origin)
            .finish()
    }
}

fn invalid(message: String) -> GatewayError {
    GatewayError::Invalid(message)
}

fn io_error(context: String, source: std::io::Error) -> GatewayError {
    GatewayError::Io { context, source }
}

/// Checks a token's form: visible ASCII, at least [`MIN_ADMIN_TOKEN_LEN`] characters.
fn check_token(token: &str, source: &str) -> Result<(), GatewayError> {
    if token.len() < MIN_ADMIN_TOKEN_LEN || token.bytes().any(|b| !(0x21..=0x7e).contains(&b)) {
        return Err(invalid(format!(
            "{source}: the admin token must be at least {MIN_ADMIN_TOKEN_LEN} visible ASCII \
             characters without spaces"
        )));
    }
    Ok(())
}

impl AdminToken {
    /// A token from a value (`origin` says where it came from, for the start-up log).
    pub(crate) fn new(value: &str, origin: impl Into<String>) -> Result<Self, GatewayError> {
        let origin = origin.into();
        let value = value.trim();
        check_token(value, &origin)?;
        Ok(Self {
            token: Zeroizing::new(value.to_owned()),
            origin,
        })
    }

    /// `env_value` (the value of `WBAUTH_ADMIN_TOKEN`) wins; otherwise `data_dir/admin.token`
    /// is read, or generated on first start (32 random bytes as hex, mode 0600). A token file
    /// that group or others can read is refused.
    pub(crate) fn load_or_create(
        data_dir: &FsPath,
        env_value: Option<&str>,
    ) -> Result<Self, GatewayError> {
        if let Some(value) = env_value.filter(|v| !v.is_empty()) {
            return Self::new(value, ADMIN_TOKEN_ENV);
        }
        let path = Self::file_path(data_dir);
        match read_token_file(&path)? {
            Some(token) => Ok(token),
            None => create_token_file(&path),
        }
    }

    /// Where the token file of a data directory is.
    #[must_use]
    pub(crate) fn file_path(data_dir: &FsPath) -> PathBuf {
        data_dir.join(ADMIN_TOKEN_FILE)
    }

    /// Where the token came from (never the token).
    #[must_use]
    pub(crate) fn origin(&self) -> &str {
        &self.origin
    }

    /// Whether `presented` is the token (constant time in the token's content).
    #[must_use]
    pub(crate) fn matches(&self, presented: &[u8]) -> bool {
        self.token.as_bytes().ct_eq(presented).into()
    }
}

fn read_token_file(path: &FsPath) -> Result<Option<AdminToken>, GatewayError> {
    let shown = path.display().to_string();
    let mut file = match secret_file::open_private(path) {
        Ok(Some(file)) => file,
        Ok(None) => return Ok(None),
        Err(Unusable::Open(e) | Unusable::Inspect(e)) => {
            return Err(io_error(format!("reading the admin token file {shown}"), e));
        }
        Err(Unusable::Exposed(_)) => {
            return Err(invalid(format!(
                "the admin token file {shown} is accessible by group or others (chmod 600 {shown})"
            )));
        }
        Err(Unusable::NotAFile) => {
            return Err(invalid(format!(
                "the admin token file {shown} is not a regular file (remove it or set {ADMIN_TOKEN_ENV})"
            )));
        }
    };
    let mut text = Zeroizing::new(String::new());
    file.read_to_string(&mut text)
        .map_err(|e| io_error(format!("reading the admin token file {shown}"), e))?;
    AdminToken::new(&text, format!("file {shown}")).map(Some)
}

fn create_token_file(path: &FsPath) -> Result<AdminToken, GatewayError> {
    let shown = path.display().to_string();
    let mut bytes = Zeroizing::new([0u8; 32]);
    getrandom::fill(&mut bytes[..]).map_err(|e| invalid(format!("no randomness: {e}")))?;
    let token = Zeroizing::new(whitebit_auth::encoding::hex_encode(&bytes[..]));
    match secret_file::write_new(path, token.as_bytes()) {
        Ok(()) => AdminToken::new(&token, format!("generated into {shown}")),
        // Another process created it meanwhile: use its token.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read_token_file(path)?
            .ok_or_else(|| invalid(format!("the admin token file {shown} vanished"))),
        Err(e) => Err(io_error(
            format!("creating the admin token file {shown}"),
            e,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_checked_and_redacted() {
        let token = AdminToken::new("0123456789abcdef", "test").expect("token");
        assert!(token.matches(b"0123456789abcdef"));
        assert!(!token.matches(b"0123456789abcdeF"));
        assert!(!token.matches(b"0123456789abcde"));
        assert!(!format!("{token:?}").contains("0123456789abcdef"));
        assert!(AdminToken::new("short", "test").is_err());
        assert!(AdminToken::new("with space 0123456789", "test").is_err());
    }

    #[test]
    fn token_file_is_generated_private_and_reused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = AdminToken::load_or_create(dir.path(), None).expect("created");
        assert!(first.origin().starts_with("generated into "));
        let path = AdminToken::file_path(dir.path());
        let text = std::fs::read_to_string(&path).expect("file");
        assert_eq!(text.len(), 64);
        assert!(first.matches(text.as_bytes()));
        let again = AdminToken::load_or_create(dir.path(), None).expect("read");
        assert!(again.matches(text.as_bytes()));
        let from_env =
            AdminToken::load_or_create(dir.path(), Some("env-token-0123456789")).expect("env");
        assert_eq!(from_env.origin(), ADMIN_TOKEN_ENV);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
            let e = AdminToken::load_or_create(dir.path(), None).expect_err("readable");
            assert!(e.to_string().contains("chmod 600"), "{e}");
        }
    }
}
