//! CVM API 2017-03-12 wire types: the JSON bodies the official SDK posts and
//! the `{"Response": …}` envelope every answer comes in, errors included
//! (`Response.Error`, with HTTP 200).

use serde::{Deserialize, Serialize};

/// The CVM API version every call names in `X-TC-Version`.
pub const VERSION: &str = "2017-03-12";
/// The service name in the TC3 credential scope and the host.
pub const SERVICE: &str = "cvm";
/// At most this many instance ids (and key ids) per call, for every action used here.
pub const MAX_IDS_PER_CALL: usize = 100;
/// `DescribeInstances` returns 20 unless told otherwise: ask for the maximum.
pub const DESCRIBE_LIMIT: u32 = 100;

/// The CVM actions a binder uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Bind key pairs to instances (asynchronous: follow `LatestOperationState`).
    AssociateInstancesKeyPairs,
    /// Unbind key pairs from instances (asynchronous, likewise).
    DisassociateInstancesKeyPairs,
    /// Instances' state, key ids and latest operation.
    DescribeInstances,
    /// Key pairs by id or name.
    DescribeKeyPairs,
    /// Registers a public key as a key pair; answers its `KeyId`.
    ImportKeyPair,
}

impl Action {
    /// The name sent in `X-TC-Action`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AssociateInstancesKeyPairs => "AssociateInstancesKeyPairs",
            Self::DisassociateInstancesKeyPairs => "DisassociateInstancesKeyPairs",
            Self::DescribeInstances => "DescribeInstances",
            Self::DescribeKeyPairs => "DescribeKeyPairs",
            Self::ImportKeyPair => "ImportKeyPair",
        }
    }
}

/// The body of `AssociateInstancesKeyPairs` and `DisassociateInstancesKeyPairs`
/// (no idempotency token exists for either).
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeyPairsCall<'a> {
    /// At most 100 instance ids (`ins-…`).
    pub instance_ids: &'a [&'a str],
    /// At most 100 key ids (`skey-…`).
    pub key_ids: &'a [&'a str],
    /// Shut a running instance down for the change (and start it again);
    /// sent only when the caller consented.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub force_stop: Option<bool>,
}

/// The body of `DescribeInstances` by ids.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeInstancesCall<'a> {
    /// At most 100 instance ids; unknown ones are simply absent from the answer.
    pub instance_ids: &'a [&'a str],
    /// Page size; without it only 20 come back.
    pub limit: u32,
}

/// The body of `DescribeKeyPairs`: by ids, or by name through the `key-name` filter.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeKeyPairsCall<'a> {
    /// Key ids, when looking up by id.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub key_ids: &'a [&'a str],
    /// Filters, when looking up by name.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<Filter<'a>>,
    /// Page size (at most 100).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

/// One `Filters` entry.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Filter<'a> {
    /// Filter name, such as `key-name`.
    pub name: &'a str,
    /// Values, any of which matches.
    pub values: Vec<&'a str>,
}

/// Every answer: `{"Response": {...}}`.
#[derive(Clone, Debug, Deserialize)]
pub struct Envelope<T> {
    /// The answer proper.
    #[serde(rename = "Response")]
    pub response: T,
}

/// What every answer carries beside the action's fields.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Head {
    /// Set when the call failed (the HTTP status is still 200).
    #[serde(rename = "Error", default)]
    pub error: Option<ApiError>,
    /// The request id; for a key-pair call, also the id its operation carries.
    #[serde(rename = "RequestId", default)]
    pub request_id: Option<String>,
}

/// The answer: an error, or the action's fields, and always a request id.
#[derive(Clone, Debug)]
pub struct Answer<T> {
    /// Set when the call failed (the HTTP status is still 200).
    pub error: Option<ApiError>,
    /// The request id; for a key-pair call, also the id its operation carries.
    pub request_id: Option<String>,
    /// The action's own fields (their defaults on errors).
    pub body: T,
}

/// `Response.Error`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct ApiError {
    /// Dotted error code, such as `InvalidInstanceId.NotFound`.
    #[serde(rename = "Code", default)]
    pub code: String,
    /// Free text, localised; may name the instances it is about.
    #[serde(rename = "Message", default)]
    pub message: String,
}

/// What `Associate…`/`Disassociate…` answer: only the request id.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Empty {}

/// `DescribeInstances` fields.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct InstancesAnswer {
    /// How many matched (may exceed the page).
    #[serde(default)]
    pub total_count: u64,
    /// This page.
    #[serde(default)]
    pub instance_set: Vec<Instance>,
}

/// One instance, with what binding needs.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct Instance {
    /// `ins-…`.
    pub instance_id: String,
    /// `RUNNING`, `STOPPED`, `STOPPING`, …
    #[serde(default)]
    pub instance_state: Option<String>,
    /// The OS name: the only hint of Windows.
    #[serde(default)]
    pub os_name: Option<String>,
    /// Its login settings (key ids).
    #[serde(default)]
    pub login_settings: Option<LoginSettings>,
    /// The latest operation's action name.
    #[serde(default)]
    pub latest_operation: Option<String>,
    /// `OPERATING`, `SUCCESS` or `FAILED`.
    #[serde(default)]
    pub latest_operation_state: Option<String>,
    /// The request id of the call that started the latest operation.
    #[serde(default)]
    pub latest_operation_request_id: Option<String>,
    /// Why the latest operation failed.
    #[serde(default)]
    pub latest_operation_error_msg: Option<String>,
    /// `KEEP_CHARGING`, `STOP_CHARGING` or `NOT_APPLICABLE` (stopped instances).
    #[serde(default)]
    pub stop_charging_mode: Option<String>,
}

impl Instance {
    /// The key ids bound to it (none when `null`).
    pub fn key_ids(&self) -> &[String] {
        self.login_settings.as_ref().and_then(|l| l.key_ids.as_deref()).unwrap_or_default()
    }
}

/// `LoginSettings`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct LoginSettings {
    /// Bound key ids, or `null`.
    #[serde(default)]
    pub key_ids: Option<Vec<String>>,
}

/// `DescribeKeyPairs` fields.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeyPairsAnswer {
    /// How many matched.
    #[serde(default)]
    pub total_count: u64,
    /// This page.
    #[serde(default)]
    pub key_pair_set: Vec<KeyPair>,
}

/// One key pair.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct KeyPair {
    /// `skey-…`, what the key-pair calls take.
    pub key_id: String,
    /// The name users know it by.
    #[serde(default)]
    pub key_name: String,
    /// Instances it is bound to.
    #[serde(default)]
    pub associated_instance_ids: Vec<String>,
    /// The OpenSSH public key (CVM shows no fingerprint).
    #[serde(default)]
    pub public_key: Option<String>,
}

/// The body of `ImportKeyPair`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImportKeyPairCall<'a> {
    /// Letters, digits and `_`, at most 25.
    pub key_name: &'a str,
    /// `0`: the default project.
    pub project_id: u64,
    /// The OpenSSH public key line.
    pub public_key: &'a str,
}

/// The answer of `ImportKeyPair`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImportKeyPairAnswer {
    /// `skey-…`, what the key-pair calls take.
    #[serde(default)]
    pub key_id: String,
}

/// Reads an answer of `T`; `None` when the body is not the envelope at all.
/// Two passes that each skip what they do not need, rather than one that
/// buffers the whole answer (as `#[serde(flatten)]` would).
pub fn parse<T: serde::de::DeserializeOwned + Default>(body: &[u8]) -> Option<Answer<T>> {
    let head = serde_json::from_slice::<Envelope<Head>>(body).ok()?.response;
    // An error answer has none of the action's fields.
    let fields = match head.error {
        Some(_) => T::default(),
        None => serde_json::from_slice::<Envelope<T>>(body).ok()?.response,
    };
    Some(Answer { error: head.error, request_id: head.request_id, body: fields })
}

/// Only the error and request id of an answer, the rest skipped: the check
/// every answer gets.
pub fn head(body: &[u8]) -> Option<Head> {
    serde_json::from_slice::<Envelope<Head>>(body).ok().map(|e| e.response)
}
