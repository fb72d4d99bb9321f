//! The HTTP client every provider shares: `reqwest` with rustls, proxies
//! from the environment, a bounded body read and a span per call.

use std::fmt;
use std::time::Duration;

use ::http::header::HeaderValue;
use bytes::{Bytes, BytesMut};
use tracing::Instrument;
use url::Url;

use super::{CallInfo, ClientSettings, HttpOptions, HttpResponse, TransportError};
use crate::error::Error;

/// The HTTP client every provider shares: `reqwest`, built here or handed
/// over by the application.
#[derive(Clone)]
pub struct HttpClient {
    client: reqwest::Client,
    options: HttpOptions,
    /// Built by the application: its own settings (proxies, roots, user agent) stand as given.
    external: bool,
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClient")
            .field("options", &self.options)
            .field("application_client", &self.external)
            .finish_non_exhaustive()
    }
}

impl HttpClient {
    /// The library's own client, its proxies read through `var` (tests inject their own).
    fn build(options: HttpOptions, tls_roots: bool, var: &dyn Fn(&str) -> Option<String>) -> Result<Self, String> {
        let user_agent = HeaderValue::from_str(&options.user_agent).map_err(|_| "malformed user agent".to_string())?;
        let proxies = env_proxies(var)?;
        // Reading the platform's store takes milliseconds: only a client
        // that may speak TLS (an https endpoint or proxy) loads it.
        let tls = tls_roots || proxies.iter().any(|p| p.tls);
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(tls)
            .connect_timeout(options.connect_timeout)
            .tcp_nodelay(true)
            .pool_idle_timeout(Duration::from_secs(90))
            .user_agent(user_agent)
            // The cloud APIs answer; they do not redirect. A redirect followed would resend a signed write.
            .redirect(reqwest::redirect::Policy::none())
            // Proxies come only from the variables read above (reqwest would read the real environment).
            .no_proxy();
        for proxy in proxies {
            builder = builder.proxy(proxy.proxy);
        }
        let client = builder.build().map_err(|e| format!("TLS setup: {}", error_chain(&e)))?;
        Ok(Self { client, options, external: false })
    }

    /// Builds the client of one provider for the endpoints it will call: the
    /// application's own (`settings.http_client`) when given, else the
    /// library's; a failure (a malformed proxy variable) is that provider's
    /// configuration error.
    ///
    /// The library's client speaks TLS with rustls and trusts the bundled
    /// roots and the platform's store (which honours `SSL_CERT_FILE`);
    /// `HTTPS_PROXY`, `HTTP_PROXY` and `NO_PROXY` are honoured, and loopback
    /// is never proxied.
    pub fn for_provider(provider: &'static str, settings: &ClientSettings, endpoints: &[&Url]) -> Result<Self, Error> {
        if let Some(client) = &settings.http_client {
            return Ok(Self::from_reqwest(client.clone(), settings.http.clone()));
        }
        let tls = endpoints.iter().any(|e| e.scheme() != "http");
        Self::build(settings.http.clone(), tls, &|name| std::env::var(name).ok())
            .map_err(|e| Error::config(provider, format!("cannot build the HTTP client: {e}")))
    }

    /// The application's own client, used as given; only the per-call
    /// deadline and the body limit of `options` apply on top of it.
    pub fn from_reqwest(client: reqwest::Client, options: HttpOptions) -> Self {
        Self { client, options, external: true }
    }

    /// The limits in force.
    pub fn options(&self) -> &HttpOptions {
        &self.options
    }

    /// Sends a request and reads the body within the size limit.
    pub async fn send(
        &self,
        request: ::http::Request<Bytes>,
        info: CallInfo<'_>,
    ) -> Result<HttpResponse, TransportError> {
        let span = tracing::debug_span!(
            "api_call",
            provider = info.provider,
            action = info.action,
            instances = info.instances,
            status = tracing::field::Empty,
            request_id = tracing::field::Empty,
        );
        async {
            let limit = info.timeout.map_or(self.options.request_timeout, |t| t.min(self.options.request_timeout));
            let result = match tokio::time::timeout(limit, self.send_inner(request)).await {
                Ok(result) => result,
                Err(_) => Err(TransportError::Timeout),
            };
            let span = tracing::Span::current();
            match &result {
                Ok(response) => {
                    span.record("status", response.status);
                    if let Some(id) = info.request_id_header.and_then(|h| response.header(h)) {
                        span.record("request_id", id);
                    }
                    tracing::debug!(bytes = response.body.len(), "response");
                }
                Err(error) => tracing::debug!(%error, "no response"),
            }
            result
        }
        .instrument(span)
        .await
    }

    async fn send_inner(&self, request: ::http::Request<Bytes>) -> Result<HttpResponse, TransportError> {
        let (parts, body) = request.into_parts();
        // The signed URI, as reqwest takes it; it was valid as a URI, so it parses.
        let url = Url::parse(&parts.uri.to_string())
            .map_err(|e| TransportError::NotSent(format!("the request's URI is not a URL: {e}")))?;
        let mut outgoing = reqwest::Request::new(parts.method, url);
        *outgoing.headers_mut() = parts.headers;
        // A GET goes without a body, and says none (as the SDKs send it).
        if !body.is_empty() {
            *outgoing.body_mut() = Some(body.into());
        }
        let mut response = self.client.execute(outgoing).await.map_err(classify)?;
        let limit = self.options.max_body_bytes;
        let announced = response.content_length();
        if announced.is_some_and(|len| len > limit as u64) {
            return Err(TransportError::BodyTooLarge { limit });
        }
        let (status, headers) = (response.status().as_u16(), std::mem::take(response.headers_mut()));
        // Sized once when the length is announced (never past the limit).
        let mut body = BytesMut::with_capacity(announced.map_or(0, |len| len as usize));
        while let Some(chunk) = response.chunk().await.map_err(|e| TransportError::MaybeSent(error_chain(&e)))? {
            if body.len() + chunk.len() > limit {
                return Err(TransportError::BodyTooLarge { limit });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(HttpResponse { status, headers, body: body.freeze() })
    }
}

/// A proxy the environment names, and whether reaching it speaks TLS.
struct EnvProxy {
    proxy: reqwest::Proxy,
    tls: bool,
}

/// The proxies of the environment, read through `var` so tests inject
/// their own: `HTTPS_PROXY` and `HTTP_PROXY` (upper or lower case), each
/// skipping `NO_PROXY`, `localhost` and loopback addresses.
fn env_proxies(var: &dyn Fn(&str) -> Option<String>) -> Result<Vec<EnvProxy>, String> {
    let var = |name: &str| var(name).or_else(|| var(&name.to_ascii_lowercase())).filter(|v| !v.trim().is_empty());
    let bypass = match var("NO_PROXY") {
        Some(list) => format!("{list},localhost,127.0.0.0/8,::1"),
        None => "localhost,127.0.0.0/8,::1".to_string(),
    };
    let mut proxies = Vec::new();
    for (name, scheme) in [("HTTPS_PROXY", "https"), ("HTTP_PROXY", "http")] {
        let Some(value) = var(name) else { continue };
        let value = value.trim();
        // A bare `host:port` reads as an http:// proxy. Messages never repeat the value: it may hold a password.
        let url = if value.contains("://") { value.to_string() } else { format!("http://{value}") };
        let tls = match Url::parse(&url) {
            Ok(u) if u.host_str().is_some_and(|h| !h.is_empty()) && matches!(u.scheme(), "http" | "https") => {
                u.scheme() == "https"
            }
            Ok(u) if !matches!(u.scheme(), "http" | "https") => {
                return Err(format!("{name}: only http:// and https:// proxies are supported, not {}://", u.scheme()));
            }
            _ => return Err(format!("{name} is not a proxy URL")),
        };
        let proxy = if scheme == "https" { reqwest::Proxy::https(&url) } else { reqwest::Proxy::http(&url) }
            .map_err(|_| format!("{name} is not a proxy URL"))?
            .no_proxy(reqwest::NoProxy::from_string(&bypass));
        proxies.push(EnvProxy { proxy, tls });
    }
    Ok(proxies)
}

/// A request that never reached a connection (refused, DNS, TLS, a refused
/// proxy tunnel) is safe to send again; any other failure may have reached
/// the cloud. When in doubt: maybe sent.
fn classify(error: reqwest::Error) -> TransportError {
    // Messages come from reqwest, hyper and the OS; the URL (no secrets, but noise) is left out.
    let error = error.without_url();
    if error.is_connect() || error.is_builder() {
        TransportError::NotSent(error_chain(&error))
    } else if error.is_timeout() {
        TransportError::Timeout
    } else {
        TransportError::MaybeSent(error_chain(&error))
    }
}

/// An error and its causes, one after the other.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A one-connection HTTP/1.1 peer on loopback: it reads the request
    /// head, answers `reply` (or closes, when `None`), and hands back the head.
    async fn peer(reply: Option<&'static [u8]>) -> (std::net::SocketAddr, tokio::task::JoinHandle<String>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match socket.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            match reply {
                Some(reply) => {
                    let _ = socket.write_all(reply).await;
                    let _ = socket.shutdown().await;
                }
                None => drop(socket),
            }
            String::from_utf8_lossy(&head).into_owned()
        });
        (addr, task)
    }

    fn client(options: HttpOptions, env: &[(&str, String)]) -> HttpClient {
        let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        HttpClient::build(options, false, &|name| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())).unwrap()
    }

    async fn get(client: &HttpClient, uri: &str) -> Result<HttpResponse, TransportError> {
        let request = ::http::Request::builder().uri(uri).body(Bytes::new()).unwrap();
        let info = CallInfo { provider: "test", action: "Get", instances: 1, request_id_header: None, timeout: None };
        client.send(request, info).await
    }

    #[tokio::test]
    async fn an_answer_is_read_whole_with_its_status_and_headers() {
        let (addr, head) =
            peer(Some(b"HTTP/1.1 201 Created\r\nx-request-id: r-1\r\ncontent-length: 2\r\n\r\n{}")).await;
        let client = client(HttpOptions::default(), &[]);
        let response = get(&client, &format!("http://{addr}/v1/x?a=b")).await.unwrap();
        assert_eq!(
            (response.status, response.header("x-request-id"), &response.body[..]),
            (201, Some("r-1"), &b"{}"[..])
        );
        let head = head.await.unwrap();
        assert!(head.starts_with("GET /v1/x?a=b HTTP/1.1\r\n"), "{head}");
        assert!(head.contains(&format!("host: {addr}\r\n")), "{head}");
        assert!(head.contains(concat!("user-agent: keypair-binder/", env!("CARGO_PKG_VERSION"))), "{head}");
        // A GET carries no body, and says none (as the SDKs send it).
        assert!(!head.to_ascii_lowercase().contains("content-length"), "{head}");
    }

    #[tokio::test]
    async fn a_post_sends_its_body_with_its_length_and_headers_as_given() {
        let (addr, head) = peer(Some(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")).await;
        let request = ::http::Request::builder()
            .method("POST")
            .uri(format!("http://{addr}/"))
            .header("content-type", "application/json")
            .header("user-agent", "sdk/1.0")
            .body(Bytes::from_static(b"{\"a\":1}"))
            .unwrap();
        let info = CallInfo { provider: "test", action: "Post", instances: 1, request_id_header: None, timeout: None };
        client(HttpOptions::default(), &[]).send(request, info).await.unwrap();
        let head = head.await.unwrap();
        assert!(head.starts_with("POST / HTTP/1.1\r\n"), "{head}");
        for line in ["content-length: 7", "content-type: application/json", "user-agent: sdk/1.0"] {
            assert!(head.contains(&format!("{line}\r\n")), "{line} in {head}");
        }
        assert!(!head.contains("keypair-binder/"), "the request's own user agent is kept: {head}");
    }

    #[tokio::test]
    async fn a_body_past_the_limit_is_refused_announced_or_not() {
        let options = HttpOptions { max_body_bytes: 8, ..HttpOptions::default() };
        let (addr, _) = peer(Some(b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\n123456789")).await;
        let err = get(&client(options.clone(), &[]), &format!("http://{addr}/")).await.unwrap_err();
        assert_eq!(err, TransportError::BodyTooLarge { limit: 8 });
        let chunked = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\n12345\r\n5\r\n67890\r\n0\r\n\r\n";
        let (addr, _) = peer(Some(chunked)).await;
        let err = get(&client(options, &[]), &format!("http://{addr}/")).await.unwrap_err();
        assert_eq!(err, TransportError::BodyTooLarge { limit: 8 });
    }

    #[tokio::test]
    async fn a_refused_connection_was_not_sent_and_a_dropped_one_may_have_been() {
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
        let client = client(HttpOptions::default(), &[]);
        let err = get(&client, &format!("http://{closed}/")).await.unwrap_err();
        assert!(matches!(err, TransportError::NotSent(_)) && !err.maybe_applied(), "{err:?}");
        let (addr, head) = peer(None).await;
        let err = get(&client, &format!("http://{addr}/")).await.unwrap_err();
        assert!(matches!(err, TransportError::MaybeSent(_)) && err.maybe_applied(), "{err:?}");
        assert!(head.await.unwrap().starts_with("GET / HTTP/1.1"));
    }

    #[tokio::test]
    async fn a_silent_peer_times_out_within_the_request_timeout() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let _held = tokio::spawn(async move {
            let accepted = listener.accept().await;
            tokio::time::sleep(Duration::from_secs(30)).await;
            drop(accepted);
        });
        let options = HttpOptions { request_timeout: Duration::from_millis(200), ..HttpOptions::default() };
        let err = get(&client(options, &[]), &format!("http://{addr}/")).await.unwrap_err();
        assert_eq!(err, TransportError::Timeout);
    }

    #[tokio::test]
    async fn plain_http_goes_to_its_proxy_in_absolute_form_with_the_proxy_credentials() {
        let (proxy, head) = peer(Some(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")).await;
        let client = client(HttpOptions::default(), &[("HTTP_PROXY", format!("http://user:pw@{proxy}"))]);
        let response = get(&client, "http://ecs.example.com/v1/x?a=b").await.unwrap();
        assert_eq!(&response.body[..], b"ok");
        let head = head.await.unwrap();
        assert!(head.starts_with("GET http://ecs.example.com/v1/x?a=b HTTP/1.1\r\n"), "{head}");
        assert!(head.to_ascii_lowercase().contains("proxy-authorization: basic dxnlcjpwdw=="), "{head}");
    }

    #[tokio::test]
    async fn https_tunnels_through_its_proxy_and_a_refused_tunnel_was_not_sent() {
        let (proxy, head) = peer(Some(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n")).await;
        let client = client(HttpOptions::default(), &[("https_proxy", format!("user:pw@{proxy}"))]);
        let err = get(&client, "https://ecs.example.com/v1/x").await.unwrap_err();
        assert!(matches!(err, TransportError::NotSent(_)), "{err:?}");
        let head = head.await.unwrap();
        assert!(head.starts_with("CONNECT ecs.example.com:443 HTTP/1.1\r\n"), "{head}");
        assert!(head.to_ascii_lowercase().contains("proxy-authorization: basic dxnlcjpwdw=="), "{head}");
    }

    /// An HTTPS server on loopback for `localhost`, with a certificate of its
    /// own and these ALPN protocols; it answers every request with the HTTP
    /// version it was made in. Returns its port and the root that signs it.
    async fn tls_server(alpn: &[&[u8]]) -> (u16, rustls::pki_types::CertificateDer<'static>) {
        use http_body_util::Full;
        use hyper_util::rt::{TokioExecutor, TokioIo};
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let cert = certified.cert.der().clone();
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
        // The process's provider, from rustls' one enabled crypto feature.
        let mut config =
            rustls::ServerConfig::builder().with_no_client_auth().with_single_cert(vec![cert.clone()], key).unwrap();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(socket).await else { return };
                    let service =
                        hyper::service::service_fn(|request: ::http::Request<hyper::body::Incoming>| async move {
                            let version = format!("{:?}", request.version());
                            Ok::<_, std::convert::Infallible>(::http::Response::new(Full::new(Bytes::from(version))))
                        });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        (port, cert)
    }

    /// An application's own client that trusts only `root`, handed over as it is.
    fn trusting(root: Option<rustls::pki_types::CertificateDer<'static>>) -> HttpClient {
        let mut builder = reqwest::Client::builder().use_rustls_tls().tls_built_in_root_certs(false);
        if let Some(root) = root {
            builder = builder.add_root_certificate(reqwest::Certificate::from_der(&root).unwrap());
        }
        HttpClient::from_reqwest(builder.build().unwrap(), HttpOptions::default())
    }

    #[tokio::test]
    async fn https_is_verified_and_speaks_http2_when_the_server_offers_it() {
        let (port, root) = tls_server(&[b"h2", b"http/1.1"]).await;
        let client = trusting(Some(root));
        let response = get(&client, &format!("https://localhost:{port}/v1/x?a=b")).await.unwrap();
        assert_eq!((response.status, &response.body[..]), (200, &b"HTTP/2.0"[..]));
        let (port, root) = tls_server(&[b"http/1.1"]).await;
        let response = get(&trusting(Some(root)), &format!("https://localhost:{port}/")).await.unwrap();
        assert_eq!(&response.body[..], b"HTTP/1.1");
    }

    #[tokio::test]
    async fn an_untrusted_certificate_fails_before_anything_is_sent() {
        let (port, _) = tls_server(&[b"http/1.1"]).await;
        let err = get(&trusting(None), &format!("https://localhost:{port}/")).await.unwrap_err();
        assert!(matches!(err, TransportError::NotSent(_)), "{err:?}");
        assert!(err.to_string().to_ascii_lowercase().contains("certificate"), "{err}");
    }

    #[tokio::test]
    async fn loopback_is_never_proxied() {
        let (proxy, _) = peer(Some(b"HTTP/1.1 200 OK\r\ncontent-length: 7\r\n\r\nproxied")).await;
        let (direct, head) = peer(Some(b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\ndirect")).await;
        let env = [("HTTP_PROXY", format!("http://{proxy}")), ("NO_PROXY", "internal.example".to_string())];
        let response = get(&client(HttpOptions::default(), &env), &format!("http://{direct}/x")).await.unwrap();
        assert_eq!(&response.body[..], b"direct");
        assert!(head.await.unwrap().starts_with("GET /x HTTP/1.1"), "origin form: not sent as to a proxy");
    }

    #[test]
    fn proxy_variables_are_checked_without_repeating_them() {
        let check = |name: &str, value: &str| {
            let env = [(name.to_string(), value.to_string())];
            env_proxies(&|n| env.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone())).map(|p| p.len())
        };
        assert_eq!(check("HTTPS_PROXY", "http://u:pw@proxy.internal:3128"), Ok(1));
        assert_eq!(check("https_proxy", "proxy.internal:3128"), Ok(1), "a bare host:port, lower case");
        assert_eq!(check("HTTP_PROXY", "https://proxy.internal"), Ok(1), "a TLS proxy");
        assert_eq!(check("HTTPS_PROXY", "  "), Ok(0), "blank is unset");
        let err = check("HTTPS_PROXY", "socks5://u:secret-pw@proxy.internal:1080").unwrap_err();
        assert!(err.contains("socks5") && !err.contains("secret-pw"), "{err}");
        let err = check("HTTP_PROXY", "http://u:secret-pw@").unwrap_err();
        assert!(err.contains("HTTP_PROXY") && !err.contains("secret-pw"), "{err}");
    }
}
