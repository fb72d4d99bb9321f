//! The application's own `reqwest::Client`, handed to every provider's
//! builder, is the one that sends: here it alone trusts the certificate of
//! an HTTPS front on loopback (TLS terminated, bytes passed to the emulator),
//! so a bind over it succeeds while the library's own client refuses the
//! certificate before anything is sent.

mod support;

use std::sync::Arc;

use keypair_binder::{Error, KeypairBinder};
use keypair_binder_emulator::{Cloud, DEFAULT_KEYPAIR, Emulator};
use support::{alibaba, bind_request, huawei, tencent, volcengine};

/// An HTTPS front for `localhost` with a certificate of its own, passing
/// each connection's bytes to `backend`; its port and the certificate.
async fn https_front(backend: std::net::SocketAddr) -> (u16, rustls::pki_types::CertificateDer<'static>) {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert = certified.cert.der().clone();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
    let mut config =
        rustls::ServerConfig::builder().with_no_client_auth().with_single_cert(vec![cert.clone()], key).unwrap();
    // The emulator speaks HTTP/1.1: offer only that.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(socket).await else { return };
                let Ok(mut plain) = tokio::net::TcpStream::connect(backend).await else { return };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    (port, cert)
}

fn backend(emu: &Emulator) -> std::net::SocketAddr {
    let url = emu.base_url();
    format!("{}:{}", url.host_str().unwrap(), url.port().unwrap()).parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_application_client_with_its_own_root_binds_over_tls_on_every_cloud() {
    let emu = support::emulator().instances(12).start().await.unwrap();
    let (port, root) = https_front(backend(&emu)).await;
    let endpoint = format!("https://localhost:{port}");
    let application_client = || {
        reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_der(&root).unwrap())
            .build()
            .unwrap()
    };
    for cloud in [Cloud::Huawei, Cloud::Volcengine, Cloud::Alibaba, Cloud::Tencent] {
        let build = |client: Option<reqwest::Client>| -> Arc<dyn KeypairBinder> {
            macro_rules! with_client {
                ($builder:expr) => {{
                    let builder = $builder;
                    match client {
                        Some(c) => Arc::new(builder.http_client(c).build().unwrap()),
                        None => Arc::new(builder.build().unwrap()),
                    }
                }};
            }
            match cloud {
                Cloud::Huawei => {
                    with_client!(huawei(&emu).endpoint(&endpoint).iam_endpoint(&endpoint).ecs_endpoint(&endpoint))
                }
                Cloud::Volcengine => with_client!(volcengine(&emu).endpoint(&endpoint)),
                Cloud::Alibaba => with_client!(alibaba(&emu).endpoint(&endpoint)),
                Cloud::Tencent => with_client!(tencent(&emu).endpoint(&endpoint)),
            }
        };
        let ids = emu.inventory().ids(cloud);

        // The library's own client does not trust the front's certificate: nothing sent.
        let calls_before = emu.request_log().len();
        let refused = build(None).bind(bind_request(cloud, &emu, &ids)).await;
        assert!(matches!(refused, Err(Error::Unreachable { .. })), "{cloud:?}: {refused:?}");
        assert_eq!(emu.request_log().len(), calls_before, "{cloud:?}: nothing reached the cloud");

        let report = build(Some(application_client())).bind(bind_request(cloud, &emu, &ids)).await.unwrap();
        assert!(report.all_bound(), "{cloud:?}: {report:?}");
        for id in &ids {
            assert_eq!(emu.binding(cloud, id).as_deref(), Some(DEFAULT_KEYPAIR), "{cloud:?} {id}");
            assert_eq!(emu.applications(cloud, id), 1, "{cloud:?} {id}");
        }
    }
}
