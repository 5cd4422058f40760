//! TLS with rustls (SPEC §12), on a real loopback socket with a
//! certificate made here by rcgen: HTTPS works over TLS 1.2 and 1.3, a
//! TLS 1.1 hello is refused, plain HTTP on the TLS port gets no HTTP
//! answer, and SIGHUP makes the server pick up a new certificate. One test
//! in this binary: it sends SIGHUP to its own process.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use flapi::http::edge::{Listen, serve_listener};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};

mod fixture {
    flapi_macros::project!("tests/fixtures/mcp");
}

struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A self-signed certificate for `localhost`: (certificate DER, cert PEM, key PEM).
fn certificate() -> (CertificateDer<'static>, String, String) {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("rcgen");
    (
        made.cert.der().clone(),
        made.cert.pem(),
        made.signing_key.serialize_pem(),
    )
}

fn write_pair(dir: &Path, cert: &str, key: &str) {
    // Key first, then the certificate, each replaced atomically.
    for (name, text) in [("key.pem", key), ("cert.pem", cert)] {
        let tmp = dir.join(format!("{name}.tmp"));
        std::fs::write(&tmp, text).expect("write pem");
        std::fs::rename(&tmp, dir.join(name)).expect("rename pem");
    }
}

fn client(
    roots: &[&CertificateDer<'static>],
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> TlsConnector {
    let mut store = RootCertStore::empty();
    for root in roots {
        store.add((*root).clone()).expect("root");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .expect("versions")
        .with_root_certificates(store)
        .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

/// GET /health over TLS: the status line, the negotiated version and the
/// certificate the server presented.
async fn https_get(
    port: u16,
    connector: &TlsConnector,
) -> Result<
    (
        String,
        rustls::ProtocolVersion,
        CertificateDer<'static>,
        bool,
    ),
    String,
> {
    let tcp = TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| e.to_string())?;
    let name = ServerName::try_from("localhost").expect("name");
    let mut tls = connector
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    let (_, session) = tls.get_ref();
    let version = session.protocol_version().ok_or("no version")?;
    let cert = session
        .peer_certificates()
        .and_then(|c| c.first().cloned())
        .ok_or("no certificate")?;
    tls.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .map_err(|e| e.to_string())?;
    let mut reply = Vec::new();
    let _ = tls.read_to_end(&mut reply).await;
    let text = String::from_utf8_lossy(&reply).to_string();
    let hsts = text
        .to_ascii_lowercase()
        .contains("\r\nstrict-transport-security: max-age=31536000\r\n");
    Ok((
        text.lines().next().unwrap_or("").to_string(),
        version,
        cert,
        hsts,
    ))
}

/// A TLS 1.1 ClientHello (no supported_versions extension), as an old
/// client sends it.
fn tls11_hello() -> Vec<u8> {
    let mut body = vec![0x03, 0x02];
    body.extend([7u8; 32]); // random
    body.push(0); // session id
    body.extend([0x00, 0x04, 0xc0, 0x13, 0x00, 0x2f]); // two CBC suites
    body.extend([0x01, 0x00]); // null compression
    let mut handshake = vec![0x01, 0x00, (body.len() >> 8) as u8, body.len() as u8];
    handshake.extend(body);
    let mut record = vec![
        0x16,
        0x03,
        0x01,
        (handshake.len() >> 8) as u8,
        handshake.len() as u8,
    ];
    record.extend(handshake);
    record
}

async fn first_bytes(port: u16, send: &[u8]) -> Vec<u8> {
    let mut tcp = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    tcp.write_all(send).await.expect("send");
    let mut reply = vec![0u8; 2048];
    let n = tokio::time::timeout(Duration::from_secs(10), tcp.read(&mut reply))
        .await
        .expect("the server answers or closes")
        .unwrap_or(0);
    reply.truncate(n);
    reply
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_refuses_old_tls_and_plain_http_and_reloads_on_sighup() {
    let mut random = [0u8; 6];
    getrandom::fill(&mut random).expect("random");
    let dir = std::env::temp_dir().join(format!(
        "flapi-tls-{}",
        random
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let scratch = Scratch(dir.clone());
    let (first, first_pem, first_key) = certificate();
    let (second, second_pem, second_key) = certificate();
    write_pair(&scratch.0, &first_pem, &first_key);

    let app = common::start(&fixture::PROJECT);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let listen = Listen {
        tls: Some((dir.join("cert.pem"), dir.join("key.pem"))),
        max_header_bytes: 16 << 10,
    };
    let shutdown = app.shutdown.clone();
    let server = tokio::spawn(serve_listener(
        listener,
        app.router.clone(),
        shutdown.clone(),
        listen,
    ));

    // HTTPS works, with TLS 1.3 by default and with TLS 1.2 when asked.
    let both = client(&[&first, &second], rustls::ALL_VERSIONS);
    let (status, version, cert, hsts) = https_get(port, &both).await.expect("https");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(hsts, "an HTTPS response carries Strict-Transport-Security");
    assert_eq!(version, rustls::ProtocolVersion::TLSv1_3);
    assert_eq!(cert, first);
    let tls12 = client(&[&first, &second], &[&rustls::version::TLS12]);
    let (status, version, _, _) = https_get(port, &tls12).await.expect("TLS 1.2");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert_eq!(version, rustls::ProtocolVersion::TLSv1_2);
    // A client that does not trust the certificate fails the handshake.
    let stranger = client(&[&second], rustls::ALL_VERSIONS);
    assert!(https_get(port, &stranger).await.is_err());

    // TLS 1.1: an alert (content type 21) or a closed connection, never a
    // ServerHello (22).
    let reply = first_bytes(port, &tls11_hello()).await;
    assert!(
        reply.first() != Some(&0x16),
        "TLS 1.1 was answered: {reply:?}"
    );
    if let Some(&kind) = reply.first() {
        assert_eq!(kind, 0x15, "{reply:?}");
    }
    // Plain HTTP on the TLS port gets no HTTP response.
    let reply = first_bytes(port, b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n").await;
    assert!(
        !reply.starts_with(b"HTTP/"),
        "{}",
        String::from_utf8_lossy(&reply)
    );

    // SIGHUP: the new certificate is served on new connections.
    write_pair(&scratch.0, &second_pem, &second_key);
    let pid = std::process::id().to_string();
    let status = std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .expect("kill -HUP");
    assert!(status.success());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (_, _, cert, _) = https_get(port, &both).await.expect("https after reload");
        if cert == second {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the new certificate was never served"
        );
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The plain-HTTP redirect listener answers every request with 308.
    let plain = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let plain_port = plain.local_addr().expect("addr").port();
    tokio::spawn(flapi::http::edge::redirect_listener(
        plain,
        "api.example.test",
        port,
        shutdown.clone(),
    ));
    // The target is the configured public name: a client's `Host` (here
    // an attacker's) never becomes the redirect's host.
    let reply = first_bytes(
        plain_port,
        b"GET /customers?x=1 HTTP/1.1\r\nHost: evil.example:1\r\nConnection: close\r\n\r\n",
    )
    .await;
    let text = String::from_utf8_lossy(&reply).to_ascii_lowercase();
    assert!(text.starts_with("http/1.1 308"), "{text}");
    assert!(
        text.contains(&format!(
            "location: https://api.example.test:{port}/customers?x=1"
        )),
        "{text}"
    );
    assert!(!text.contains("evil"), "{text}");

    shutdown.cancel();
    server
        .await
        .expect("server task")
        .expect("server ends cleanly");
}
