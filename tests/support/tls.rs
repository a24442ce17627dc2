//! A certificate authority for the tests' HTTPS servers (the local Azure server: azure_identity
//! 1.x refuses an authority host that is not HTTPS), made per test run with rcgen. converge
//! trusts it only through the process environment a test gives it (`SSL_CERT_FILE`), as a
//! company CA is trusted: no flag weakens certificate checks in production.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

/// The test CA, its PEM file, and a server configuration for `127.0.0.1` and `localhost`.
pub struct TestCa {
    _dir: tempfile::TempDir,
    /// The CA certificate (PEM), for `SSL_CERT_FILE`.
    pub ca_file: PathBuf,
    config: Arc<rustls::ServerConfig>,
}

/// The one test CA of this test process.
pub fn ca() -> &'static TestCa {
    static CA: OnceLock<TestCa> = OnceLock::new();
    CA.get_or_init(TestCa::new)
}

impl TestCa {
    fn new() -> TestCa {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "converge test CA");
        let ca_key = KeyPair::generate().unwrap();
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let leaf_params =
            CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
        let leaf_key = KeyPair::generate().unwrap();
        let leaf = leaf_params.signed_by(&leaf_key, &issuer).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, ca_cert.pem()).unwrap();
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into());
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone(), ca_cert.der().clone()], key)
        .unwrap();
        TestCa {
            _dir: dir,
            ca_file,
            config: Arc::new(config),
        }
    }

    /// A TLS acceptor with the leaf certificate.
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.config.clone())
    }

    /// The environment a converge process needs to trust it.
    pub fn env(&self) -> (String, String) {
        (
            "SSL_CERT_FILE".to_string(),
            self.ca_file.display().to_string(),
        )
    }
}
