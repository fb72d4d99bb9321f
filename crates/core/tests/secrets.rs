//! Every public type that holds a secret prints no secret through Debug or Display.

use keypair_binder_core::{BindRequest, Secret, UnbindRequest, VmCredential};

const PASSWORD: &str = "pw-Very$ecret-123";
const KEY: &str = "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAAsecretkeymaterial\n-----END OPENSSH PRIVATE KEY-----";

#[test]
fn no_secret_in_debug_or_display() {
    let secret = Secret::new(PASSWORD);
    let password = VmCredential::password(PASSWORD);
    let key = VmCredential::private_key(KEY);
    let bind = BindRequest::builder().keypair_name("kp").instance("i-1").credential(password.clone()).build().unwrap();
    let unbind = UnbindRequest::builder().instance("i-1").credential(key.clone()).build().unwrap();
    let texts = [
        format!("{secret:?}"),
        format!("{secret}"),
        format!("{password:?}"),
        format!("{key:?}"),
        format!("{bind:?}"),
        format!("{bind:#?}"),
        format!("{unbind:?}"),
        format!("{:?}", bind.common()),
        format!("{:?}", bind.common().options),
    ];
    for text in texts {
        assert!(!text.contains(PASSWORD) && !text.contains("secretkeymaterial"), "leak: {text}");
    }
}
