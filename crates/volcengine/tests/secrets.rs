//! No secret key, session token or password reaches logs (at trace level),
//! `Debug` or `Display` in a full run. Its own binary, so the scoped tracing
//! subscriber sees every callsite.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::*;
use keypair_binder_core::KeypairBinder;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn no_secret_in_logs_or_debug_output() {
    let token = "STS-session-token-value-9f8e7d";
    let (endpoint, _) = start(|n, call| match n {
        0 => Reply::Json(500, error_body("InternalError", "x")),
        _ => details(call, &[("i-0001", "InvalidInstance.NotFound")]),
    })
    .await;
    let captured = Captured::default();
    let sink = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || sink.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let binder = builder(&endpoint).session_token(token).build().unwrap();
    let report = binder.bind(bind(ids(3))).await.unwrap();
    let bad = builder(&endpoint).credentials(AK, "another-secret-key").build().unwrap();
    let err = bad.bind(bind(ids(1))).await.unwrap_err();
    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("api_call"), "tracing captured the calls: {logs}");
    let texts =
        [logs, format!("{binder:?}"), format!("{report:?}"), format!("{err:?}"), format!("{err}"), format!("{bad:?}")];
    for text in texts {
        for secret in [SK, token, "another-secret-key"] {
            assert!(!text.contains(secret), "secret leaked: {text}");
        }
    }
}
