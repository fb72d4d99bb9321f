//! The hand-written request bodies are the JSON the reference construction
//! (serde_json's `json!`) makes from the same fields, for any text: quotes,
//! backslashes, control characters and non-ASCII included.

use keypair_binder_core::Secret;
use keypair_binder_huawei::wire::{
    AssociateBody, Auth, AuthType, BatchAssociateBody, DisassociateBody, Server, to_body,
};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

/// Plain ids most of the time, any text some of the time.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![3 => "[a-z0-9-]{0,40}", 1 => any::<String>(), 1 => "[\"\\\\\u{0}-\u{1f}é€😀 a]{0,12}"]
}

/// A server's fields, owned (a `Server` borrows them).
type ServerFields = (String, Option<(bool, String)>, Option<bool>, Option<u16>);

fn server() -> impl Strategy<Value = ServerFields> {
    (text(), prop::option::of((any::<bool>(), text())), prop::option::of(any::<bool>()), prop::option::of(any::<u16>()))
}

/// The server's credential as the binder holds it: one owned secret.
fn key_of(fields: &ServerFields) -> Option<Secret> {
    fields.1.as_ref().map(|(_, key)| Secret::new(key.as_str()))
}

fn to_server<'a>(fields: &'a ServerFields, key: Option<&'a Secret>) -> Server<'a> {
    let (id, auth, disable_password, port) = fields;
    let kind = match auth {
        Some((false, _)) => AuthType::Keypair,
        _ => AuthType::Password,
    };
    Server { id, auth: key.map(|key| Auth { kind, key }), disable_password: *disable_password, port: *port }
}

/// What the SDK's model sends: every field that is set, none that is not.
fn server_value(server: &Server) -> Value {
    let mut fields = Map::new();
    fields.insert("id".into(), json!(server.id));
    if let Some(auth) = &server.auth {
        fields.insert("auth".into(), json!({"type": auth.kind.as_str(), "key": auth.key.expose()}));
    }
    if let Some(disable) = server.disable_password {
        fields.insert("disable_password".into(), json!(disable));
    }
    if let Some(port) = server.port {
        fields.insert("port".into(), json!(port));
    }
    Value::Object(fields)
}

fn associate_value(body: &AssociateBody) -> Value {
    json!({"keypair_name": body.keypair_name, "server": server_value(&body.server)})
}

fn parsed(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).expect("the body is JSON")
}

proptest! {
    #[test]
    fn an_associate_body_is_the_reference_json(keypair_name in text(), server in server()) {
        let key = key_of(&server);
        let body = AssociateBody { keypair_name: &keypair_name, server: to_server(&server, key.as_ref()) };
        prop_assert_eq!(parsed(&to_body(&body)), associate_value(&body));
    }

    #[test]
    fn a_batch_body_is_the_reference_json(
        entries in prop::collection::vec((text(), server()), 0..12),
    ) {
        let keys: Vec<Option<Secret>> = entries.iter().map(|(_, server)| key_of(server)).collect();
        let body = BatchAssociateBody {
            batch_keypairs: entries
                .iter()
                .zip(&keys)
                .map(|((keypair_name, server), key)| AssociateBody { keypair_name, server: to_server(server, key.as_ref()) })
                .collect(),
        };
        let expected = json!({"batch_keypairs": body.batch_keypairs.iter().map(associate_value).collect::<Vec<_>>()});
        prop_assert_eq!(parsed(&to_body(&body)), expected);
    }

    #[test]
    fn a_disassociate_body_is_the_reference_json(server in server()) {
        let key = key_of(&server);
        let body = DisassociateBody { server: to_server(&server, key.as_ref()) };
        prop_assert_eq!(parsed(&to_body(&body)), json!({"server": server_value(&body.server)}));
    }
}

/// Field order is the SDK model's, and nothing is padded: the bytes, not just the value.
#[test]
fn a_password_body_is_written_in_the_sdk_field_order() {
    let password = Secret::new("P@ss\"w\\0rd\n");
    let body = AssociateBody {
        keypair_name: "kp-demo",
        server: Server {
            id: "d76baba7-ef09-40a2-87ff-3eafec0696e7",
            auth: Some(Auth { kind: AuthType::Password, key: &password }),
            disable_password: Some(false),
            port: Some(2222),
        },
    };
    assert_eq!(
        String::from_utf8(to_body(&body)).unwrap(),
        r#"{"keypair_name":"kp-demo","server":{"id":"d76baba7-ef09-40a2-87ff-3eafec0696e7","auth":{"type":"password","key":"P@ss\"w\\0rd\n"},"disable_password":false,"port":2222}}"#
    );
}
