//! A throw-away certificate authority for the MESH mutual-TLS tests, made
//! with the `openssl` command line at run time (no key is committed).
#![allow(dead_code)]

use super::mesh::{SandboxTls, X26ABC1, X26ABC2};
use std::path::PathBuf;
use std::process::{Command, Stdio};

// --- certificates ---

/// `openssl` extensions for each kind of certificate made here. webpki (rustls)
/// wants v3 certificates, `CA:TRUE` on the CA, `CA:FALSE` on the leaves and the
/// server's address in its subjectAltName.
const OPENSSL_CNF: &str = "\
[req]
distinguished_name = dn
prompt = no
[dn]
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1
authorityKeyIdentifier = keyid
subjectKeyIdentifier = hash
[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
authorityKeyIdentifier = keyid
subjectKeyIdentifier = hash
";

/// A throw-away PKI in a temp dir. Keys are PKCS#8 (`BEGIN PRIVATE KEY`) P-256
/// unless named otherwise; `NAME.pem` is the certificate, `NAME.key` its key.
pub struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    pub fn new() -> Pki {
        let pki = Pki {
            dir: tempfile::tempdir().expect("temp dir for the certificates"),
        };
        std::fs::write(pki.path("openssl.cnf"), OPENSSL_CNF).unwrap();
        for ca in ["ca", "rogue-ca"] {
            pki.ec_key(ca);
            pki.openssl(&[
                "req",
                "-x509",
                "-new",
                "-key",
                &format!("{ca}.key"),
                "-subj",
                &format!("/CN=ips-bridge tests {ca}"),
                "-days",
                "2",
                "-config",
                "openssl.cnf",
                "-extensions",
                "ca",
                "-out",
                &format!("{ca}.pem"),
            ]);
        }
        pki.ec_key("server");
        pki.leaf("server", "127.0.0.1", "ca", "server");
        // The bridge's mailbox; the practice's (the harness's client); the
        // bridge's mailbox again, signed by a CA the sandbox does not know.
        for (name, cn, ca) in [
            ("client", X26ABC1.id, "ca"),
            ("practice", X26ABC2.id, "ca"),
            ("rogue-client", X26ABC1.id, "rogue-ca"),
        ] {
            pki.ec_key(name);
            pki.leaf(name, cn, ca, "client");
        }
        // The same client key in the traditional SEC1 form (`BEGIN EC PRIVATE KEY`),
        // and an RSA client certificate with a PKCS#1 key (`BEGIN RSA PRIVATE KEY`),
        // as `openssl req -newkey rsa:2048` wrote them before OpenSSL 3.
        pki.openssl(&[
            "pkey",
            "-in",
            "client.key",
            "-traditional",
            "-out",
            "client-sec1.key",
        ]);
        pki.openssl(&[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            "client-rsa.pkcs8.key",
        ]);
        pki.openssl(&[
            "pkey",
            "-in",
            "client-rsa.pkcs8.key",
            "-traditional",
            "-out",
            "client-rsa.key",
        ]);
        pki.leaf("client-rsa", X26ABC1.id, "ca", "client");
        for (key, header) in [
            ("client.key", "-----BEGIN PRIVATE KEY-----"),
            ("client-sec1.key", "-----BEGIN EC PRIVATE KEY-----"),
            ("client-rsa.key", "-----BEGIN RSA PRIVATE KEY-----"),
        ] {
            let text = std::fs::read_to_string(pki.path(key)).unwrap();
            assert!(text.starts_with(header), "{key}: {text}");
        }
        pki
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The path as a `&str` for a setting.
    pub fn file(&self, name: &str) -> String {
        self.path(name)
            .to_str()
            .expect("UTF-8 temp path")
            .to_owned()
    }

    pub fn openssl(&self, args: &[&str]) {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .output()
            .expect("the openssl command line (apt-get install openssl)");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn ec_key(&self, name: &str) {
        self.openssl(&[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            &format!("{name}.key"),
        ]);
    }

    /// `NAME.pem` for `NAME.key`, subject `CN=cn`, signed by `ca`, with the
    /// `ext` section of [`OPENSSL_CNF`].
    pub fn leaf(&self, name: &str, cn: &str, ca: &str, ext: &str) {
        self.openssl(&[
            "req",
            "-new",
            "-key",
            &format!("{name}.key"),
            "-subj",
            &format!("/CN={cn}"),
            "-config",
            "openssl.cnf",
            "-out",
            &format!("{name}.csr"),
        ]);
        let serial = format!("0x{}", &uuid::Uuid::new_v4().simple().to_string()[..16]);
        self.openssl(&[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{ca}.pem"),
            "-CAkey",
            &format!("{ca}.key"),
            "-set_serial",
            &serial,
            "-days",
            "2",
            "-extfile",
            "openssl.cnf",
            "-extensions",
            ext,
            "-out",
            &format!("{name}.pem"),
        ]);
    }

    /// The sandbox's files: served with `server`, trusting `ca` only; the
    /// harness's client is the practice.
    pub fn sandbox(&self) -> SandboxTls {
        SandboxTls {
            ca_cert: self.path("ca.pem"),
            server_cert: self.path("server.pem"),
            server_key: self.path("server.key"),
            client_cert: self.path("practice.pem"),
            client_key: self.path("practice.key"),
        }
    }

    /// The bridge's three settings: client certificate `cert` with key `key`
    /// (empty: none), trusting `ca` for the server.
    pub fn settings(&self, cert: &str, key: &str, ca: &str) -> Vec<(&'static str, String)> {
        let f = |n: &str| {
            if n.is_empty() {
                String::new()
            } else {
                self.file(n)
            }
        };
        vec![
            ("IPS__MESH__CLIENT_CERT_FILE", f(cert)),
            ("IPS__MESH__CLIENT_KEY_FILE", f(key)),
            ("IPS__MESH__CA_CERT_FILE", f(ca)),
        ]
    }
}
