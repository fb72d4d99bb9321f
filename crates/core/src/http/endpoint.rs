//! The endpoint policy: region ids, HTTPS unless on loopback or opted in,
//! and the `Host` a URL is signed with.

use std::net::IpAddr;

use url::Url;

use crate::error::Error;

/// Checks a region id before it goes into a host name or a header: letters,
/// digits and `-`, nothing else.
pub fn check_region(provider: &'static str, region: &str) -> Result<(), Error> {
    if region.is_empty() || !region.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err(Error::config(provider, format!("malformed region {region:?}")));
    }
    Ok(())
}

/// Checks an endpoint against the transport policy: HTTPS always; plain HTTP
/// only for an explicitly given endpoint on loopback, or with an explicit
/// opt-in (`allow_http`).
pub fn check_endpoint(provider: &'static str, endpoint: &Url, allow_http: bool) -> Result<(), Error> {
    match endpoint.scheme() {
        "https" => {}
        "http" if allow_http || is_loopback(endpoint) => {}
        "http" => {
            return Err(Error::config(
                provider,
                format!(
                    "refusing plain http to non-loopback endpoint {endpoint}; use https, or opt in to insecure http explicitly"
                ),
            ));
        }
        other => return Err(Error::config(provider, format!("unsupported endpoint scheme `{other}` in {endpoint}"))),
    }
    if endpoint.host_str().is_none_or(str::is_empty) {
        return Err(Error::config(provider, format!("endpoint {endpoint} has no host")));
    }
    if !endpoint.username().is_empty() || endpoint.password().is_some() {
        return Err(Error::config(provider, "endpoint must not carry credentials in its URL"));
    }
    Ok(())
}

/// Whether a URL's host is a loopback address or `localhost`.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

/// The `Host` header value of a URL: host, plus the port when not the default.
pub fn host_header(url: &Url) -> String {
    host_and_port(url).to_owned()
}

/// [`host_header`] borrowed from the URL: the `url` crate already writes
/// the host (IPv6 in brackets) and a non-default port side by side.
pub fn host_and_port(url: &Url) -> &str {
    &url[url::Position::BeforeHost..url::Position::AfterPort]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_policy() {
        let ok = |u: &str, allow| check_endpoint("t", &Url::parse(u).unwrap(), allow).is_ok();
        assert!(ok("https://kms.cn-north-4.myhuaweicloud.com", false));
        assert!(ok("http://127.0.0.1:8080", false));
        assert!(ok("http://[::1]:8080", false));
        assert!(ok("http://localhost:1", false));
        assert!(!ok("http://10.0.0.1", false));
        assert!(!ok("http://example.com", false));
        assert!(ok("http://example.com", true));
        assert!(!ok("ftp://example.com", true));
        assert!(!ok("https://user:pw@example.com", false));
    }

    #[test]
    fn host_header_keeps_non_default_ports() {
        assert_eq!(host_header(&Url::parse("https://a.b").unwrap()), "a.b");
        assert_eq!(host_header(&Url::parse("https://a.b:443").unwrap()), "a.b");
        assert_eq!(host_header(&Url::parse("http://127.0.0.1:8080/x").unwrap()), "127.0.0.1:8080");
        assert_eq!(host_header(&Url::parse("http://[::1]:8080/x?q").unwrap()), "[::1]:8080");
        assert_eq!(host_header(&Url::parse("https://[::1]:443").unwrap()), "[::1]");
        assert_eq!(host_header(&Url::parse("https://user:pw@A.b:8443/").unwrap()), "a.b:8443");
    }
}
