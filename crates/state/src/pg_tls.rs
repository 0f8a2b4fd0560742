//! TLS to the PostgreSQL state, with libpq's `sslmode` meanings (the URLs users already have
//! for `psql` mean the same here):
//!
//! - `disable`: no TLS.
//! - `prefer` (the default): TLS when the server offers it, else plain; the certificate is not
//!   checked (it only guards against a passive listener).
//! - `require`: TLS or nothing; the certificate is not checked unless `sslrootcert` names the
//!   CA, as libpq does then (`verify-ca`).
//! - `verify-ca`: TLS, and the certificate chains to `sslrootcert`.
//! - `verify-full`: as `verify-ca`, and the certificate names the host of the URL.
//!
//! `sslrootcert` is a PEM file (for RDS and Aurora, AWS's `global-bundle.pem`:
//! <https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/UsingWithRDS.SSL.html>), or
//! `system` for the operating system's trusted CAs; without it, libpq's default
//! `~/.postgresql/root.crt` (<https://www.postgresql.org/docs/current/libpq-ssl.html>).

use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio_postgres::config::SslMode;

/// How the connection is protected: libpq's `sslmode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl TlsMode {
    fn parse(value: &str) -> Option<Self> {
        Some(match value {
            "disable" => Self::Disable,
            "prefer" => Self::Prefer,
            "require" => Self::Require,
            "verify-ca" => Self::VerifyCa,
            "verify-full" => Self::VerifyFull,
            _ => return None,
        })
    }

    /// What the driver is told: whether TLS may be skipped.
    pub fn driver_mode(self) -> SslMode {
        match self {
            Self::Disable => SslMode::Disable,
            Self::Prefer => SslMode::Prefer,
            Self::Require | Self::VerifyCa | Self::VerifyFull => SslMode::Require,
        }
    }
}

/// A state URL split into what the driver reads and what TLS needs: the driver knows neither
/// `verify-ca`/`verify-full` nor `sslrootcert`.
#[derive(Debug)]
pub struct TlsUrl {
    /// The URL without `sslmode` and `sslrootcert`.
    pub driver_url: String,
    pub mode: TlsMode,
    pub root_cert: Option<String>,
}

/// Takes `sslmode` and `sslrootcert` out of `url`'s query; an unknown `sslmode` is an error
/// naming the value and the ones allowed.
pub fn split_url(url: &str) -> Result<TlsUrl, String> {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, q),
        None => (url, ""),
    };
    let mut mode = None;
    let mut root_cert = None;
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "sslmode" => {
                mode = Some(TlsMode::parse(value).ok_or_else(|| {
                    format!(
                        "sslmode={value:?} is not a TLS mode: use disable, prefer, require, \
                         verify-ca or verify-full"
                    )
                })?);
            }
            "sslrootcert" => root_cert = Some(percent_decoded(value)),
            _ => kept.push(pair),
        }
    }
    // libpq: with sslrootcert=system the default is verify-full and a weaker mode is an
    // error, since any publicly trusted certificate would do for anyone who holds one.
    let mode = match (mode, root_cert.as_deref()) {
        (None, Some("system")) => TlsMode::VerifyFull,
        (Some(m), Some("system")) if m != TlsMode::VerifyFull => {
            return Err(
                "sslrootcert=system trusts every public CA: it needs sslmode=verify-full (the \
                 default with it), which also checks the host name"
                    .to_owned(),
            );
        }
        (m, _) => m.unwrap_or(TlsMode::Prefer),
    };
    let driver_url = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok(TlsUrl {
        driver_url,
        mode,
        root_cert,
    })
}

/// `%2F` and the like in a query value (a path in `sslrootcert`).
fn percent_decoded(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The rustls configuration for `mode`; `None` for `disable`.
pub fn client_config(
    mode: TlsMode,
    root_cert: Option<&str>,
) -> Result<Option<ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("cannot set up TLS: {e}"))?;
    // libpq's `require` with a root certificate, given or at its default place, checks the
    // chain (`verify-ca`).
    let mode = match (mode, root_cert) {
        (TlsMode::Require, Some(_)) => TlsMode::VerifyCa,
        (TlsMode::Require, None) if default_root_cert().exists() => TlsMode::VerifyCa,
        (m, _) => m,
    };
    let verifier: Arc<dyn ServerCertVerifier> = match mode {
        TlsMode::Disable => return Ok(None),
        TlsMode::Prefer | TlsMode::Require => Arc::new(Unchecked(provider)),
        TlsMode::VerifyCa | TlsMode::VerifyFull => {
            let roots = Arc::new(roots(root_cert)?);
            let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider)
                .build()
                .map_err(|e| format!("cannot use the root certificates: {e}"))?;
            if mode == TlsMode::VerifyFull {
                webpki
            } else {
                Arc::new(AnyName(webpki))
            }
        }
    };
    Ok(Some(
        builder
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth(),
    ))
}

/// The CAs a server certificate must chain to.
fn roots(root_cert: Option<&str>) -> Result<RootCertStore, String> {
    let mut store = RootCertStore::empty();
    if root_cert == Some("system") {
        let found = rustls_native_certs::load_native_certs();
        for cert in found.certs {
            let _ = store.add(cert);
        }
        if store.is_empty() {
            return Err("sslrootcert=system: the system has no trusted CA certificates".into());
        }
        return Ok(store);
    }
    let path = match root_cert {
        Some(p) => PathBuf::from(p),
        None => {
            let default = default_root_cert();
            if !default.exists() {
                return Err(format!(
                    "verifying the server's certificate needs its CA: add \
                     sslrootcert=PATH to the URL (for RDS and Aurora, AWS's global-bundle.pem), \
                     sslrootcert=system for the system's CAs, or put it at {}",
                    default.display()
                ));
            }
            default
        }
    };
    let certs = CertificateDer::pem_file_iter(&path)
        .map_err(|e| format!("cannot read sslrootcert {}: {e}", path.display()))?;
    for cert in certs {
        let cert = cert.map_err(|e| format!("sslrootcert {}: {e}", path.display()))?;
        store
            .add(cert)
            .map_err(|e| format!("sslrootcert {}: {e}", path.display()))?;
    }
    if store.is_empty() {
        return Err(format!(
            "sslrootcert {} holds no PEM certificate",
            path.display()
        ));
    }
    Ok(store)
}

/// libpq's default root certificate file: `~/.postgresql/root.crt`.
fn default_root_cert() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default()
        .join(".postgresql/root.crt")
}

/// `prefer` and `require` without a CA: the connection is encrypted, the server not
/// authenticated (libpq's meaning). Handshake signatures are still checked.
#[derive(Debug)]
struct Unchecked(Arc<CryptoProvider>);

impl ServerCertVerifier for Unchecked {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca`: the chain is checked, the name in the certificate is not.
#[derive(Debug)]
struct AnyName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sslmode_and_sslrootcert_are_taken_out_of_the_url() {
        let u = split_url(
            "postgres://u:p@h:5432/db?application_name=x&sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem",
        )
        .unwrap();
        assert_eq!(u.driver_url, "postgres://u:p@h:5432/db?application_name=x");
        assert_eq!(u.mode, TlsMode::VerifyFull);
        assert_eq!(u.root_cert.as_deref(), Some("/etc/ca.pem"));
        let plain = split_url("postgres://h/db").unwrap();
        assert_eq!(
            (plain.driver_url.as_str(), plain.mode),
            ("postgres://h/db", TlsMode::Prefer)
        );
        let bad = split_url("postgres://h/db?sslmode=allow-ish").unwrap_err();
        assert!(
            bad.contains("allow-ish") && bad.contains("verify-full"),
            "{bad}"
        );
    }

    #[test]
    fn the_system_cas_go_with_verify_full_only() {
        let u = split_url("postgres://h/db?sslrootcert=system").unwrap();
        assert_eq!(
            u.mode,
            TlsMode::VerifyFull,
            "verify-full by default with it"
        );
        for weaker in ["prefer", "require", "verify-ca", "disable"] {
            let e = split_url(&format!(
                "postgres://h/db?sslmode={weaker}&sslrootcert=system"
            ))
            .unwrap_err();
            assert!(e.contains("verify-full"), "{weaker}: {e}");
        }
        assert!(split_url("postgres://h/db?sslmode=verify-full&sslrootcert=system").is_ok());
    }

    #[test]
    fn verifying_without_a_ca_names_the_setting() {
        let e = roots(Some("/nonexistent/ca.pem")).unwrap_err();
        assert!(e.contains("/nonexistent/ca.pem"), "{e}");
    }
}
