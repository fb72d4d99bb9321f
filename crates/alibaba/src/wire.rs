//! ECS (2014-05-26) parameters and answers for key-pair binding: what the
//! official SDK puts on the wire, and the shapes it reads back.

use keypair_binder_core::InstanceId;
use serde::{Deserialize, Deserializer};

/// Most instances one `AttachKeyPair`/`DetachKeyPair` takes.
pub const MAX_INSTANCES_PER_CALL: usize = 50;
/// Most instances one `DescribeInstances` by id returns in a page.
pub const MAX_DESCRIBE: usize = 100;

/// The actions this provider uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Binds a key pair (replacing any other).
    AttachKeyPair,
    /// Removes it.
    DetachKeyPair,
    /// Reads instances (state, OS, key pair).
    DescribeInstances,
    /// Reads key pairs.
    DescribeKeyPairs,
    /// Uploads a public key as a key pair of the region.
    ImportKeyPair,
}

impl Action {
    /// The action's name (`x-acs-action`, or `Action` in the RPC scheme).
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

/// `InstanceIds` as the SDK writes it: a JSON array in one parameter, items
/// separated by `", "`.
pub fn instance_ids_json(instances: &[InstanceId]) -> String {
    let mut out = String::with_capacity(2 + instances.iter().map(|id| id.as_str().len() + 4).sum::<usize>());
    out.push('[');
    for (i, id) in instances.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let id = id.as_str();
        if id.bytes().all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\') {
            // Nothing to escape (every real id): copied as it is.
            out.push('"');
            out.push_str(id);
            out.push('"');
        } else {
            out.push_str(&serde_json::to_string(id).unwrap_or_else(|_| "\"\"".into()));
        }
    }
    out.push(']');
    out
}

/// Parameters of `AttachKeyPair` or `DetachKeyPair` (ACS3: the action goes in a header).
pub fn keypair_call(instances: &[InstanceId], keypair_name: &str, region: &str) -> Vec<(String, String)> {
    vec![
        ("InstanceIds".into(), instance_ids_json(instances)),
        ("KeyPairName".into(), keypair_name.into()),
        ("RegionId".into(), region.into()),
    ]
}

/// Parameters of `DescribeInstances` for these ids (at most 100).
pub fn describe_instances(instances: &[InstanceId], region: &str) -> Vec<(String, String)> {
    vec![
        ("InstanceIds".into(), instance_ids_json(instances)),
        ("PageSize".into(), MAX_DESCRIBE.to_string()),
        ("RegionId".into(), region.into()),
    ]
}

/// Parameters of `DescribeKeyPairs` for one exact name, its public key
/// included (`True`, as the official SDK spells a boolean).
pub fn describe_keypair(name: &str, region: &str) -> Vec<(String, String)> {
    vec![
        ("IncludePublicKey".into(), "True".into()),
        ("KeyPairName".into(), name.into()),
        ("RegionId".into(), region.into()),
    ]
}

/// Parameters of `ImportKeyPair` (`PublicKeyBody`: the OpenSSH line).
pub fn import_keypair(name: &str, public_key: &str, region: &str) -> Vec<(String, String)> {
    vec![
        ("KeyPairName".into(), name.into()),
        ("PublicKeyBody".into(), public_key.into()),
        ("RegionId".into(), region.into()),
    ]
}

/// Answer of `DescribeKeyPairs`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeKeyPairsResult {
    /// The key pairs found.
    #[serde(default)]
    pub key_pairs: KeyPairs,
}

/// `KeyPairs` of `DescribeKeyPairs`.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct KeyPairs {
    /// One entry per key pair.
    #[serde(rename = "KeyPair", default)]
    pub key_pair: Vec<KeyPairItem>,
}

/// One key pair as `DescribeKeyPairs` shows it.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeyPairItem {
    /// Its name.
    #[serde(default)]
    pub key_pair_name: String,
    /// MD5 fingerprint.
    #[serde(default)]
    pub key_pair_finger_print: Option<String>,
    /// The OpenSSH public key, with `IncludePublicKey=true`.
    #[serde(default)]
    pub public_key: Option<String>,
}

/// Answer of `ImportKeyPair`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImportKeyPairResult {
    /// The key pair made.
    #[serde(default)]
    pub key_pair_name: String,
    /// Its MD5 fingerprint.
    #[serde(default)]
    pub key_pair_finger_print: Option<String>,
}

/// `true`/`false` as a JSON bool or string (metadata says string, samples say bool).
fn lenient_bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Bool(bool),
        Text(String),
    }
    Ok(match Either::deserialize(d)? {
        Either::Bool(b) => b,
        Either::Text(t) => t.eq_ignore_ascii_case("true"),
    })
}

/// Answer of `AttachKeyPair` / `DetachKeyPair`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeyPairCallResult {
    /// Request id, for support.
    pub request_id: Option<String>,
    /// Per-instance results.
    #[serde(default)]
    pub results: Results,
}

/// `Results` of an attach or detach.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Results {
    /// One entry per instance.
    #[serde(rename = "Result", default)]
    pub result: Vec<InstanceResult>,
}

/// What the call did to one instance.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct InstanceResult {
    /// The instance.
    #[serde(default)]
    pub instance_id: String,
    /// Applied.
    #[serde(default, deserialize_with = "lenient_bool")]
    pub success: bool,
    /// `200`, or why not (`IncorrectInstanceStatus`…).
    #[serde(default, deserialize_with = "text")]
    pub code: String,
    /// The cloud's words.
    #[serde(default)]
    pub message: String,
}

/// A code given as a number or a string.
fn text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => s,
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    })
}

/// Answer of `DescribeInstances`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeInstancesResult {
    /// The instances found.
    #[serde(default)]
    pub instances: Instances,
}

/// `Instances` of a describe answer.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Instances {
    /// One entry per instance found.
    #[serde(rename = "Instance", default)]
    pub instance: Vec<Instance>,
}

/// The fields of an instance a bind needs.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Instance {
    /// The instance.
    #[serde(default)]
    pub instance_id: String,
    /// `Running`, `Stopped`, `Starting`…
    #[serde(default)]
    pub status: String,
    /// `linux` or `windows`.
    #[serde(rename = "OSType", default)]
    pub os_type: String,
    /// The key pair it holds, empty when none.
    #[serde(default)]
    pub key_pair_name: String,
}

/// An error answer: `{"RequestId", "Code", "Message", …}`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ApiError {
    /// Request id.
    pub request_id: Option<String>,
    /// `Throttling.User`, `InvalidAccessKeyId.NotFound`…
    pub code: Option<String>,
    /// The cloud's words.
    pub message: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_ids_are_a_json_array_as_the_sdk_writes_it() {
        let ids: Vec<InstanceId> = ["i-bp1a", "i-\"quoted\"", "i-back\\slash", "i-ünï"]
            .iter()
            .map(|id| InstanceId::new(*id).unwrap())
            .collect();
        let reference: Vec<String> = ids.iter().map(|id| serde_json::to_string(id.as_str()).unwrap()).collect();
        assert_eq!(instance_ids_json(&ids), format!("[{}]", reference.join(", ")));
        assert_eq!(instance_ids_json(&[]), "[]");
    }
}
