//! Volcengine ECS wire types (API version 2020-04-01): the query parameters
//! sent and the JSON read back. Unknown fields are ignored.

use std::borrow::Cow;

use keypair_binder_core::{InstanceId, KeyPairRef};
use serde::Deserialize;

/// The ECS API version every call names.
pub const API_VERSION: &str = "2020-04-01";
/// Most instance ids one `AttachKeyPair`/`DetachKeyPair` takes.
pub const MAX_INSTANCES_PER_CALL: usize = 100;

/// The actions this crate calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Bind a key pair to instances.
    AttachKeyPair,
    /// Remove a key pair from instances.
    DetachKeyPair,
    /// Read instances' state and binding.
    DescribeInstances,
    /// Read key pairs.
    DescribeKeyPairs,
    /// Add a public key as a key pair of the region.
    ImportKeyPair,
}

impl Action {
    /// The action's name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AttachKeyPair => "AttachKeyPair",
            Self::DetachKeyPair => "DetachKeyPair",
            Self::DescribeInstances => "DescribeInstances",
            Self::DescribeKeyPairs => "DescribeKeyPairs",
            Self::ImportKeyPair => "ImportKeyPair",
        }
    }
}

fn push_ids(query: &mut Vec<(String, String)>, prefix: &str, ids: &[InstanceId]) {
    for (n, id) in ids.iter().enumerate() {
        query.push((format!("{prefix}.{}", n + 1), id.as_str().to_string()));
    }
}

fn finish(mut query: Vec<(String, String)>, action: Action) -> Vec<(String, String)> {
    query.push(("Action".into(), action.as_str().into()));
    query.push(("Version".into(), API_VERSION.into()));
    query
}

/// Query of `AttachKeyPair` or `DetachKeyPair` (`InstanceIds.N`, the key pair, `ClientToken`).
pub fn keypair_call(
    action: Action,
    instances: &[InstanceId],
    keypair: &KeyPairRef,
    client_token: Option<&str>,
) -> Vec<(String, String)> {
    let mut query = Vec::with_capacity(instances.len() + 4);
    if let Some(token) = client_token {
        query.push(("ClientToken".into(), token.into()));
    }
    push_ids(&mut query, "InstanceIds", instances);
    query.push((keypair_param(keypair).into(), keypair.as_str().to_string()));
    finish(query, action)
}

/// The parameter that names the key pair: by id, or by name.
fn keypair_param(keypair: &KeyPairRef) -> &'static str {
    if matches!(keypair, KeyPairRef::Id(_)) { "KeyPairId" } else { "KeyPairName" }
}

/// A call's parameters, decoded, in canonical order (keys sorted as text):
/// the one source of both the query that is signed and the URL's query.
pub type Params<'a> = Vec<(Cow<'static, str>, &'a str)>;

/// The parameters of `AttachKeyPair` or `DetachKeyPair` in canonical order:
/// the pairs of [`keypair_call`], sorted, without a string per parameter.
pub fn keypair_call_params<'a>(
    action: Action,
    instances: &'a [InstanceId],
    keypair: &'a KeyPairRef,
    client_token: Option<&'a str>,
) -> Params<'a> {
    let mut params = Vec::with_capacity(instances.len() + 4);
    // Keys sort as text: Action < ClientToken < InstanceIds.N < KeyPairId/KeyPairName < Version.
    params.push((Cow::Borrowed("Action"), action.as_str()));
    if let Some(token) = client_token {
        params.push((Cow::Borrowed("ClientToken"), token));
    }
    push_id_params(&mut params, instances);
    params.push((Cow::Borrowed(keypair_param(keypair)), keypair.as_str()));
    params.push((Cow::Borrowed("Version"), API_VERSION));
    params
}

/// The parameters of `DescribeInstances` for these ids in canonical order:
/// the pairs of [`describe_instances`], sorted.
pub fn describe_instances_params<'a>(instances: &'a [InstanceId], next_token: Option<&'a str>) -> Params<'a> {
    let mut params = Vec::with_capacity(instances.len() + 4);
    // Keys sort as text: Action < InstanceIds.N < MaxResults < NextToken < Version.
    params.push((Cow::Borrowed("Action"), Action::DescribeInstances.as_str()));
    push_id_params(&mut params, instances);
    params.push((Cow::Borrowed("MaxResults"), MAX_RESULTS));
    if let Some(token) = next_token {
        params.push((Cow::Borrowed("NextToken"), token));
    }
    params.push((Cow::Borrowed("Version"), API_VERSION));
    params
}

/// The parameters of `DescribeKeyPairs` for one exact name (`KeyPairNames.1`), in canonical order.
pub fn describe_keypair_params(name: &str) -> Params<'_> {
    vec![
        (Cow::Borrowed("Action"), Action::DescribeKeyPairs.as_str()),
        (Cow::Borrowed("KeyPairNames.1"), name),
        (Cow::Borrowed("Version"), API_VERSION),
    ]
}

/// The parameters of `ImportKeyPair` in canonical order, with the
/// `ClientToken` that makes a resend answer with the first result.
pub fn import_keypair_params<'a>(name: &'a str, public_key: &'a str, client_token: &'a str) -> Params<'a> {
    vec![
        (Cow::Borrowed("Action"), Action::ImportKeyPair.as_str()),
        (Cow::Borrowed("ClientToken"), client_token),
        (Cow::Borrowed("KeyPairName"), name),
        (Cow::Borrowed("PublicKey"), public_key),
        (Cow::Borrowed("Version"), API_VERSION),
    ]
}

/// `Result` of `DescribeKeyPairs`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeKeyPairsResult {
    /// The key pairs found.
    #[serde(default)]
    pub key_pairs: Vec<KeyPairItem>,
}

/// One key pair: `DescribeKeyPairs` and `ImportKeyPair` show it alike (no public key).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeyPairItem {
    /// `kp-…`.
    #[serde(default)]
    pub key_pair_id: String,
    /// Its name.
    #[serde(default)]
    pub key_pair_name: String,
    /// MD5 of the key (hex; with or without colons).
    #[serde(default)]
    pub finger_print: Option<String>,
}

/// `MaxResults` of every `DescribeInstances`: [`MAX_INSTANCES_PER_CALL`].
const MAX_RESULTS: &str = "100";
const _: () = assert!(MAX_INSTANCES_PER_CALL == 100, "MAX_RESULTS spells it");

/// `InstanceIds.N` for every id, the numbers in text order (1, 10, 100, 11,
/// …, 19, 2, 20, …).
fn push_id_params<'a>(params: &mut Params<'a>, instances: &'a [InstanceId]) {
    let n = instances.len();
    if n > MAX_INSTANCES_PER_CALL {
        // Never built by this crate (calls carry at most 100); kept exact anyway.
        let mut order: Vec<usize> = (1..=n).collect();
        order.sort_by_cached_key(|i| i.to_string());
        params.extend(order.into_iter().map(|i| (Cow::Owned(format!("InstanceIds.{i}")), instances[i - 1].as_str())));
        return;
    }
    let keys = id_keys().iter().filter(|(i, _)| *i <= n);
    params.extend(keys.map(|(i, key)| (Cow::Borrowed(key.as_str()), instances[i - 1].as_str())));
}

/// `(N, "InstanceIds.N")` for N in 1..=100, in the text order of N: the same
/// for every call, so built once.
fn id_keys() -> &'static [(usize, String)] {
    static KEYS: std::sync::OnceLock<Vec<(usize, String)>> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| {
        let mut all: Vec<(usize, String)> =
            (1..=MAX_INSTANCES_PER_CALL).map(|i| (i, format!("InstanceIds.{i}"))).collect();
        all.sort_by(|a, b| a.1.cmp(&b.1));
        all
    })
}

/// The canonical query of parameters already in canonical order, in one
/// buffer: each key and value percent-encoded (RFC 3986), `&`-joined.
pub fn canonical(params: &Params<'_>) -> String {
    use keypair_binder_core::signing::percent_encode_into as encode_into;
    let mut out = String::with_capacity(params.iter().map(|(k, v)| k.len() + v.len() + 2).sum::<usize>() + 16);
    for (i, (key, value)) in params.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        encode_into(&mut out, key);
        out.push('=');
        encode_into(&mut out, value);
    }
    out
}

/// The canonical query string of `AttachKeyPair` or `DetachKeyPair`: the
/// same text as `canonical_query(&keypair_call(..))`.
pub fn keypair_call_canonical(
    action: Action,
    instances: &[InstanceId],
    keypair: &KeyPairRef,
    client_token: Option<&str>,
) -> String {
    canonical(&keypair_call_params(action, instances, keypair, client_token))
}

/// The canonical query of `DescribeInstances` for these ids: the same text
/// as `canonical_query(&describe_instances(..))`.
pub fn describe_instances_canonical(instances: &[InstanceId], next_token: Option<&str>) -> String {
    canonical(&describe_instances_params(instances, next_token))
}

/// Query of `DescribeInstances` for given ids (at most 100).
pub fn describe_instances(instances: &[InstanceId], next_token: Option<&str>) -> Vec<(String, String)> {
    let mut query = Vec::with_capacity(instances.len() + 4);
    push_ids(&mut query, "InstanceIds", instances);
    query.push(("MaxResults".into(), MAX_INSTANCES_PER_CALL.to_string()));
    if let Some(token) = next_token {
        query.push(("NextToken".into(), token.into()));
    }
    finish(query, Action::DescribeInstances)
}

/// `{"ResponseMetadata": …, "Result": …}`, the envelope of every answer.
#[derive(Debug, Deserialize)]
pub struct Envelope<T> {
    /// Request id and, on failure, the error.
    #[serde(rename = "ResponseMetadata")]
    pub metadata: Option<ResponseMetadata>,
    /// The action's result, absent on failure.
    #[serde(rename = "Result")]
    pub result: Option<T>,
}

/// `ResponseMetadata`.
#[derive(Debug, Default, Deserialize)]
pub struct ResponseMetadata {
    /// The request id, for support tickets.
    #[serde(rename = "RequestId")]
    pub request_id: Option<String>,
    /// The error, on failure.
    #[serde(rename = "Error")]
    pub error: Option<ApiError>,
}

/// `ResponseMetadata.Error`.
#[derive(Debug, Default, Deserialize)]
pub struct ApiError {
    /// The error code (`FlowLimitExceeded`).
    #[serde(rename = "Code")]
    pub code: Option<String>,
    /// The gateway's numeric code, when given.
    #[serde(rename = "CodeN")]
    pub code_n: Option<i64>,
    /// The message.
    #[serde(rename = "Message")]
    pub message: Option<String>,
}

/// The Go SDK's fallback error shape, for answers without `ResponseMetadata`.
#[derive(Debug, Deserialize)]
pub struct FallbackError {
    /// HTTP code as the gateway saw it.
    #[serde(rename = "HTTPCode")]
    pub http_code: Option<i64>,
    /// Error code.
    #[serde(rename = "errorcode")]
    pub code: Option<String>,
    /// Message.
    pub message: Option<String>,
}

/// `Result` of `AttachKeyPair`/`DetachKeyPair`, borrowing its text from the answer.
#[derive(Debug, Default, Deserialize)]
pub struct OperationResult<'a> {
    /// One entry per instance.
    #[serde(rename = "OperationDetails", default, borrow)]
    pub details: Vec<OperationDetail<'a>>,
}

/// One instance's result.
#[derive(Debug, Deserialize)]
pub struct OperationDetail<'a> {
    /// The instance.
    #[serde(rename = "InstanceId", borrow)]
    pub instance_id: Cow<'a, str>,
    /// `null` on success.
    #[serde(rename = "Error")]
    pub error: Option<DetailError>,
}

/// One instance's error.
#[derive(Debug, Deserialize)]
pub struct DetailError {
    /// Error code (`InvalidInstance.NotFound`).
    #[serde(rename = "Code", default)]
    pub code: String,
    /// Message.
    #[serde(rename = "Message", default)]
    pub message: String,
}

/// `Result` of `DescribeInstances`, borrowing its text from the answer: a
/// page of 100 instances is read without a copy of each field.
#[derive(Debug, Default, Deserialize)]
pub struct DescribeInstancesResult<'a> {
    /// A page of instances.
    #[serde(rename = "Instances", default, borrow)]
    pub instances: Vec<Instance<'a>>,
    /// Token of the next page; empty or absent on the last.
    #[serde(rename = "NextToken")]
    pub next_token: Option<String>,
}

/// The fields of an instance this crate reads.
#[derive(Debug, Deserialize)]
pub struct Instance<'a> {
    /// Instance id.
    #[serde(rename = "InstanceId", borrow)]
    pub instance_id: Cow<'a, str>,
    /// `RUNNING`, `STOPPED`, `STARTING`…
    #[serde(rename = "Status", default, borrow)]
    pub status: Cow<'a, str>,
    /// `Linux` or `Windows`.
    #[serde(rename = "OsType", default, borrow)]
    pub os_type: Cow<'a, str>,
    /// Bound key pair's name, empty when none.
    #[serde(rename = "KeyPairName", default, borrow)]
    pub key_pair_name: Cow<'a, str>,
    /// Bound key pair's id, empty when none.
    #[serde(rename = "KeyPairId", default, borrow)]
    pub key_pair_id: Cow<'a, str>,
}

/// Whether an instance status is a transition that will end by itself.
pub fn is_transitional(status: &str) -> bool {
    ["CREATING", "STARTING", "STOPPING", "REBOOTING", "REBUILDING", "RESIZING", "PENDING"]
        .iter()
        .any(|s| status.eq_ignore_ascii_case(s))
}
