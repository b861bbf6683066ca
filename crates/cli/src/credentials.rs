//! Where credentials come from: `WBAUTH_*` environment variables first, then a config file
//! under the user's config directory (`$XDG_CONFIG_HOME/wbauth/config.toml` or
//! `~/.config/wbauth/config.toml`, or `--credentials FILE`) that must not be readable by
//! group or others.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use whitebit_client::SecretString;
use whitebit_gateway::store::secret_file;

use crate::error::CliError;

/// The credentials file's contents.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    api_key: Option<String>,
    api_secret: Option<String>,
    base_url: Option<String>,
    #[serde(default)]
    fiat: FiatConfig,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FiatConfig {
    auth_key: Option<String>,
    enc_key: Option<String>,
}

/// Everything a command may need; each value from the environment or the file.
#[derive(Default)]
pub(crate) struct Credentials {
    /// `WBAUTH_API_KEY` / `api_key`.
    pub(crate) api_key: Option<String>,
    /// `WBAUTH_API_SECRET` / `api_secret`.
    pub(crate) api_secret: Option<SecretString>,
    /// `--base-url` / `WBAUTH_BASE_URL` / `base_url`.
    pub(crate) base_url: Option<String>,
    /// `WBAUTH_FIAT_AUTH_KEY` / `[fiat] auth_key`.
    pub(crate) fiat_auth_key: Option<String>,
    /// `WBAUTH_FIAT_ENC_KEY` / `[fiat] enc_key`.
    pub(crate) fiat_enc_key: Option<SecretString>,
    /// `--cacert` / `WBAUTH_CACERT`: root certificates trusted besides the system's.
    pub(crate) cacert: Option<PathBuf>,
}

/// The default credentials file, if a config directory can be named.
pub(crate) fn default_file() -> Option<PathBuf> {
    let base = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME").filter(|v| !v.is_empty())?).join(".config"),
    };
    Some(base.join("wbauth").join("config.toml"))
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Loads credentials. An explicitly named file must exist; the default one may not.
pub(crate) fn load(
    explicit: Option<&Path>,
    base_url_flag: Option<&str>,
) -> Result<Credentials, CliError> {
    let (path, required) = match explicit {
        Some(p) => (Some(p.to_path_buf()), true),
        None => (default_file(), false),
    };
    let file = match &path {
        Some(p) if required || p.exists() => Some(read_file(p)?),
        _ => None,
    };
    let file = file.unwrap_or_default();
    Ok(Credentials {
        api_key: env("WBAUTH_API_KEY").or(file.api_key),
        api_secret: env("WBAUTH_API_SECRET")
            .or(file.api_secret)
            .map(SecretString::from),
        base_url: base_url_flag
            .map(str::to_owned)
            .or_else(|| env("WBAUTH_BASE_URL"))
            .or(file.base_url),
        fiat_auth_key: env("WBAUTH_FIAT_AUTH_KEY").or(file.fiat.auth_key),
        fiat_enc_key: env("WBAUTH_FIAT_ENC_KEY")
            .or(file.fiat.enc_key)
            .map(SecretString::from),
        cacert: None,
    })
}

fn read_file(path: &Path) -> Result<FileConfig, CliError> {
    let shown = path.display().to_string();
    let metadata = std::fs::metadata(path).map_err(|source| CliError::Io {
        path: shown.clone(),
        source,
    })?;
    check_permissions(path, &metadata)?;
    let text = std::fs::read_to_string(path).map_err(|source| CliError::Io {
        path: shown.clone(),
        source,
    })?;
    toml::from_str(&text)
        .map_err(|e| CliError::Config(format!("{shown}: {}", e.to_string().trim_end())))
}

fn check_permissions(path: &Path, metadata: &std::fs::Metadata) -> Result<(), CliError> {
    if let Some(mode) = secret_file::exposed_mode(metadata) {
        return Err(CliError::Config(format!(
            "refusing to read {}: it holds secrets but is readable by group or others (mode {mode:04o}); \
             run `chmod 600 {}`",
            path.display(),
            path.display()
        )));
    }
    Ok(())
}

impl Credentials {
    /// The API key and secret, or a message saying how to provide them.
    pub(crate) fn require_api(&self) -> Result<(String, SecretString), CliError> {
        match (&self.api_key, &self.api_secret) {
            (Some(key), Some(secret)) => Ok((key.clone(), secret.clone())),
            _ => Err(CliError::Config(format!(
                "no API credentials: set WBAUTH_API_KEY and WBAUTH_API_SECRET, or put api_key and api_secret in {}",
                default_file().map_or_else(
                    || "a credentials file (--credentials FILE)".to_owned(),
                    |p| p.display().to_string()
                )
            ))),
        }
    }

    /// A client for the configured server and key.
    pub(crate) fn client(
        &self,
        strict: bool,
        retries: u32,
    ) -> Result<whitebit_client::Client, CliError> {
        let (key, secret) = self.require_api()?;
        let mut builder = whitebit_client::Client::builder()
            .credentials(key, secret)
            .base_url(self.base_url().as_str())
            .retry(whitebit_client::RetryPolicy::new(retries));
        if let Some(path) = &self.cacert {
            let pem = std::fs::read(path).map_err(|source| CliError::Io {
                path: path.display().to_string(),
                source,
            })?;
            builder = builder.root_certificates_pem(pem);
        }
        if strict {
            builder = builder.strict_nonces();
        }
        Ok(builder.build()?)
    }

    /// The target server: the configured one, else the global server.
    pub(crate) fn base_url(&self) -> String {
        self.base_url
            .clone()
            .unwrap_or_else(|| whitebit_client::GLOBAL_URL.to_owned())
    }
}
