//! What a provider's builder takes about HTTP: timeouts, limits, the
//! application's own client, concurrency, retries and rate, and the builder
//! setters for them.

use std::time::Duration;

/// Timeouts and limits of the HTTP client.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct HttpOptions {
    /// Time to establish a connection.
    pub connect_timeout: Duration,
    /// Time for a whole request, response body included.
    pub request_timeout: Duration,
    /// Largest response body read; a larger one is an error.
    pub max_body_bytes: usize,
    /// The `User-Agent` sent.
    pub user_agent: String,
}

impl Default for HttpOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            max_body_bytes: 4 * 1024 * 1024,
            user_agent: concat!("keypair-binder/", env!("CARGO_PKG_VERSION")).to_string(),
        }
    }
}

impl HttpOptions {
    /// Sets the time to establish a connection.
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets the time for a whole request.
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Sets the largest response body read.
    pub fn with_max_body_bytes(mut self, bytes: usize) -> Self {
        self.max_body_bytes = bytes;
        self
    }

    /// Sets the `User-Agent`.
    pub fn with_user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = user_agent.into();
        self
    }
}

/// What every provider's builder takes about talking to its cloud, beside
/// credentials and endpoints.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct ClientSettings {
    /// The application's own client (its proxies, roots, timeouts and pool), used as given.
    pub http_client: Option<reqwest::Client>,
    /// Plain `http://` allowed to a non-loopback endpoint.
    pub allow_http: bool,
    /// Timeouts and limits.
    pub http: HttpOptions,
    /// Writes in flight when a request does not say (state reads have a budget of the same size).
    pub concurrency: Option<usize>,
    /// Retry policy when a request does not say.
    pub retry: Option<crate::RetryPolicy>,
    /// Retries of that policy (the cloud's default unless set), when set.
    pub max_retries: Option<u32>,
    /// Client-side limit on the calls of every run.
    pub rate_limit: Option<crate::rate::RateLimit>,
    /// When no credentials are given, use the role of the VM this runs on,
    /// from the cloud's metadata service (`from_env` turns it on, as the
    /// SDKs' default chains do).
    pub instance_role: bool,
    /// The role to ask the metadata service for, instead of the one it names.
    pub instance_role_name: Option<String>,
    /// Where the metadata service is, instead of the cloud's fixed address.
    pub metadata_endpoint: Option<String>,
    /// A role to assume with whatever credentials the chain found.
    pub assume_role: Option<String>,
    /// The session name of an assumed role (default `kpbind-<random>`).
    pub role_session_name: Option<String>,
    /// Where the cloud's STS is, instead of its default host.
    pub sts_endpoint: Option<String>,
}

impl ClientSettings {
    /// The STS endpoint: the one set (checked as every endpoint is), else the cloud's `default`.
    pub fn sts_endpoint_or(
        &self,
        provider: &'static str,
        default: impl FnOnce() -> url::Url,
    ) -> Result<url::Url, crate::Error> {
        let Some(text) = &self.sts_endpoint else { return Ok(default()) };
        let url = url::Url::parse(text)
            .map_err(|e| crate::Error::config(provider, format!("invalid STS endpoint {text:?}: {e}")))?;
        super::check_endpoint(provider, &url, self.allow_http)?;
        Ok(url)
    }

    /// The session name of an assumed role: the one set, else `kpbind-` and
    /// a random suffix (STS session names allow `[\w+=,.@-]`, 2 to 64).
    pub fn session_name(&self) -> String {
        self.role_session_name.clone().unwrap_or_else(|| {
            let id = uuid::Uuid::new_v4().simple().to_string();
            format!("kpbind-{}", &id[..12])
        })
    }

    /// The same settings, using the VM's role when `on` (asking for `role`
    /// by name when given): what a default chain read from the environment.
    pub fn with_instance_role(mut self, on: bool, role: Option<String>) -> Self {
        self.instance_role = on;
        self.instance_role_name = role.filter(|r| !r.is_empty());
        self
    }

    /// Takes `other`'s credential chain (the instance role and its name, the
    /// role to assume and its session name), keeping every other setting:
    /// how a builder adopts a named profile.
    pub fn adopt_credential_chain(&mut self, other: &ClientSettings) {
        self.instance_role = other.instance_role;
        self.instance_role_name = other.instance_role_name.clone();
        self.assume_role = other.assume_role.clone();
        self.role_session_name = other.role_session_name.clone();
    }

    /// The retry policy of the binder: the one set, else the cloud's
    /// default, with `max_retries` when set.
    pub fn retry_or(&self, cloud_default: crate::RetryPolicy) -> crate::RetryPolicy {
        let policy = self.retry.clone().unwrap_or(cloud_default);
        match self.max_retries {
            Some(n) => policy.with_max_retries(n),
            None => policy,
        }
    }
}

/// The [`ClientSettings`] setters, for a builder with a `client: ClientSettings` field.
#[macro_export]
macro_rules! client_setters {
    () => {
        /// Allows plain `http://` to a non-loopback endpoint (insecure; for proxies you trust).
        pub fn allow_http(mut self, allow: bool) -> Self {
            self.client.allow_http = allow;
            self
        }

        /// Sends through the application's own `reqwest` client, as it is
        /// configured (proxies, root certificates, timeouts, pool); the
        /// library adds only its per-call deadline and body limit.
        pub fn http_client(mut self, client: $crate::reqwest::Client) -> Self {
            self.client.http_client = Some(client);
            self
        }

        /// HTTP timeouts and limits.
        pub fn http_options(mut self, options: $crate::http::HttpOptions) -> Self {
            self.client.http = options;
            self
        }

        /// Writes in flight when a request does not say (state reads have a budget of the same size).
        pub fn concurrency(mut self, concurrency: usize) -> Self {
            self.client.concurrency = Some(concurrency);
            self
        }

        /// Retry policy when a request does not say.
        pub fn retry_policy(mut self, policy: $crate::RetryPolicy) -> Self {
            self.client.retry = Some(policy);
            self
        }

        /// Retries of the retry policy (the cloud's default unless one is set).
        pub fn max_retries(mut self, retries: u32) -> Self {
            self.client.max_retries = Some(retries);
            self
        }

        /// When no credentials are given, uses the role of the VM this runs
        /// on, from the cloud's metadata service (on by default in `from_env`).
        pub fn instance_role(mut self, on: bool) -> Self {
            self.client.instance_role = on;
            self
        }

        /// Asks the metadata service for this role instead of the one it names.
        pub fn instance_role_name(mut self, role: impl Into<String>) -> Self {
            self.client.instance_role_name = Some(role.into());
            self
        }

        /// Where the metadata service is, instead of the cloud's fixed
        /// address (plain http is right for it); turns the instance role on.
        pub fn metadata_endpoint(mut self, url: impl Into<String>) -> Self {
            self.client.metadata_endpoint = Some(url.into());
            self.client.instance_role = true;
            self
        }

        /// Assumes this role (its ARN) with whatever credentials the chain found.
        pub fn assume_role(mut self, role_arn: impl Into<String>) -> Self {
            self.client.assume_role = Some(role_arn.into());
            self
        }

        /// The session name of an assumed role (default `kpbind-<random>`).
        pub fn role_session_name(mut self, name: impl Into<String>) -> Self {
            self.client.role_session_name = Some(name.into());
            self
        }

        /// Where the cloud's STS is, instead of its default host.
        pub fn sts_endpoint(mut self, url: impl Into<String>) -> Self {
            self.client.sts_endpoint = Some(url.into());
            self
        }

        /// A client-side limit on every API call (binds, polls, reads), across runs.
        pub fn rate_limit(mut self, rate: $crate::rate::RateLimit) -> Self {
            self.client.rate_limit = Some(rate);
            self
        }
    };
}
