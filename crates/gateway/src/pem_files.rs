//! Reading TLS material from PEM files, for the listeners (`edge::tls`) and the `https://`
//! upstreams (`verify::upstream_tls`): certificate chains, private keys, and CA roots. Each
//! message names the file and says what was expected in it.

use std::path::Path;

use tokio_rustls::rustls::RootCertStore;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The certificates of the PEM file `path` (a chain: leaf first); `what` names the file in
/// messages ("certificate file", "CA file").
///
/// # Errors
/// The file cannot be read, is not PEM, or holds no certificate.
pub(crate) fn certificates(
    path: &Path,
    what: &str,
) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = std::fs::read(path)
        .map_err(|e| format!("cannot read the {what} {}: {e}", path.display()))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{} is not a PEM certificate file: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "{} holds no certificate (expected PEM blocks \"BEGIN CERTIFICATE\", leaf first)",
            path.display()
        ));
    }
    Ok(certs)
}

/// The private key of the PEM file `path` (PKCS#8, PKCS#1 or SEC1).
///
/// # Errors
/// The file cannot be read or holds no usable key.
pub(crate) fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let pem = std::fs::read(path)
        .map_err(|e| format!("cannot read the key file {}: {e}", path.display()))?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| {
        format!(
            "{} holds no usable private key (PKCS#8, PKCS#1 or SEC1 PEM): {e}",
            path.display()
        )
    })
}

/// The CA certificates of the PEM file `path`, as trust roots.
///
/// # Errors
/// As [`certificates`], or a certificate that cannot serve as a CA.
pub(crate) fn roots(path: &Path) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    for cert in certificates(path, "CA file")? {
        roots.add(cert).map_err(|e| {
            format!(
                "{}: a certificate cannot be used as a CA: {e}",
                path.display()
            )
        })?;
    }
    Ok(roots)
}
