//! How the HTTP client reaches a host: straight, or through the proxy the
//! environment names (`HTTPS_PROXY` through a `CONNECT` tunnel, `HTTP_PROXY`
//! by sending the request to the proxy), never for loopback.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::Uri;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tower_service::Service;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The proxies of the environment, read through `var` so tests inject
/// their own: `HTTPS_PROXY` and `HTTP_PROXY` (upper or lower case), each
/// skipping `NO_PROXY`, `localhost` and loopback addresses.
pub(crate) fn env_proxies(var: &dyn Fn(&str) -> Option<String>) -> Result<Option<Matcher>, String> {
    let var = |name: &str| var(name).or_else(|| var(&name.to_ascii_lowercase())).filter(|v| !v.trim().is_empty());
    let (https, http) = (var("HTTPS_PROXY"), var("HTTP_PROXY"));
    if https.is_none() && http.is_none() {
        return Ok(None);
    }
    for (name, value) in [("HTTPS_PROXY", &https), ("HTTP_PROXY", &http)] {
        if let Some(value) = value {
            check_proxy(name, value)?;
        }
    }
    let bypass = match var("NO_PROXY") {
        Some(list) => format!("{list},localhost,127.0.0.0/8,::1"),
        None => "localhost,127.0.0.0/8,::1".to_string(),
    };
    let mut builder = Matcher::builder().no(bypass);
    if let Some(https) = https {
        builder = builder.https(https);
    }
    if let Some(http) = http {
        builder = builder.http(http);
    }
    Ok(Some(builder.build()))
}

/// A proxy is an `http://` URL (a bare `host:port` reads as one); the
/// message never repeats the value, which may hold a password.
fn check_proxy(name: &str, value: &str) -> Result<(), String> {
    let value = value.trim();
    let with_scheme = if value.contains("://") { value.to_string() } else { format!("http://{value}") };
    match url::Url::parse(&with_scheme) {
        Ok(url) if url.scheme() == "http" && url.host_str().is_some_and(|h| !h.is_empty()) => Ok(()),
        Ok(url) if url.scheme() != "http" => {
            Err(format!("{name}: only http:// proxies are supported, not {}://", url.scheme()))
        }
        _ => Err(format!("{name} is not a proxy URL")),
    }
}

/// Connects to a host, or to the proxy that serves it.
#[derive(Clone)]
pub(crate) struct ProxyConnector {
    direct: HttpConnector,
    proxies: Option<Arc<Matcher>>,
}

impl ProxyConnector {
    pub(crate) fn new(direct: HttpConnector, proxies: Option<Arc<Matcher>>) -> Self {
        Self { direct, proxies }
    }
}

impl Service<Uri> for ProxyConnector {
    type Response = Conn;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Conn, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.direct.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let intercept = self.proxies.as_ref().and_then(|m| m.intercept(&dst));
        let mut direct = self.direct.clone();
        Box::pin(async move {
            match intercept {
                None => Ok(Conn { io: direct.call(dst).await?, proxied: false }),
                // TLS goes end to end through a `CONNECT` tunnel.
                Some(proxy) if dst.scheme_str() == Some("https") => {
                    let mut tunnel = Tunnel::new(proxy.uri().clone(), direct);
                    if let Some(auth) = proxy.basic_auth() {
                        tunnel = tunnel.with_auth(auth.clone());
                    }
                    Ok(Conn { io: tunnel.call(dst).await?, proxied: false })
                }
                // Plain HTTP is sent to the proxy, in absolute form.
                Some(proxy) => Ok(Conn { io: direct.call(proxy.uri().clone()).await?, proxied: true }),
            }
        })
    }
}

/// A connection, and whether requests on it go to a proxy in absolute form.
pub(crate) struct Conn {
    io: TokioIo<TcpStream>,
    proxied: bool,
}

impl Connection for Conn {
    fn connected(&self) -> Connected {
        self.io.connected().proxy(self.proxied)
    }
}

impl Read for Conn {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: ReadBufCursor<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl Write for Conn {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matcher(vars: &[(&str, &str)]) -> Result<Option<Matcher>, String> {
        let vars: Vec<(String, String)> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        env_proxies(&|name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
    }

    fn via(m: &Matcher, uri: &str) -> Option<String> {
        m.intercept(&uri.parse().unwrap()).map(|i| i.uri().to_string())
    }

    #[test]
    fn no_proxy_variables_means_straight() {
        assert!(matcher(&[]).unwrap().is_none());
        assert!(matcher(&[("HTTPS_PROXY", "  ")]).unwrap().is_none());
    }

    #[test]
    fn each_scheme_has_its_proxy_and_loopback_never_goes_through_one() {
        let m =
            matcher(&[("https_proxy", "http://p1:3128"), ("HTTP_PROXY", "p2:8080"), ("NO_PROXY", "internal.example")])
                .unwrap()
                .unwrap();
        assert_eq!(via(&m, "https://ecs.example.com/").as_deref(), Some("http://p1:3128/"));
        assert_eq!(via(&m, "http://ecs.example.com/").as_deref(), Some("http://p2:8080/"));
        assert_eq!(via(&m, "https://internal.example/"), None);
        assert_eq!(via(&m, "http://127.0.0.1:8080/"), None);
        assert_eq!(via(&m, "http://[::1]:8080/"), None);
        assert_eq!(via(&m, "http://localhost:8080/"), None);
    }

    #[test]
    fn a_tls_or_malformed_proxy_is_refused_without_echoing_it() {
        let err = matcher(&[("HTTPS_PROXY", "https://user:secret@p:443")]).unwrap_err();
        assert!(err.contains("only http:// proxies"), "{err}");
        assert!(!err.contains("secret"), "{err}");
        let err = matcher(&[("HTTP_PROXY", "http://")]).unwrap_err();
        assert!(err.contains("HTTP_PROXY"), "{err}");
    }
}
