//! Ensuring a key pair in a region before binding it: one read; an import
//! when it is missing; a read again when an import's answer leaves doubt.
//! The import is a write sent once: a lost answer is settled by reading,
//! never by importing again.

use crate::error::Error;
use crate::kit::engine::Engine;
use crate::kit::net::Net;
use crate::kit::provider::{Provider, StoredKeypair};
use crate::kit::run::{Exchange, Halt, Purpose, RunNet, RunState};
use crate::public_key::{KeypairEnsured, PublicKey};
use crate::report::{Failure, FailureKind, Operation};
use crate::request::RunOptions;

impl Engine {
    /// Makes sure the key pair `name` holds `key` in `provider`'s region
    /// (see [`KeypairBinder::ensure_keypair`](crate::KeypairBinder::ensure_keypair)).
    pub async fn ensure_keypair(
        &self,
        provider: &dyn Provider,
        name: &str,
        key: &PublicKey,
        options: &RunOptions,
    ) -> Result<KeypairEnsured, Error> {
        let run = self.state(provider.profile(), options, Operation::Bind, None, None);
        let prepared = {
            // Setup is a read (Huawei: the project), asked again within the policy like a run's.
            let net = RunNet { run: &run, provider };
            run.read_retrying(|| provider.prepare_import(&net)).await
        };
        let prepared = prepared.map_err(|f| request_error(&run, name, f))?;
        let provider: &dyn Provider = prepared.as_deref().unwrap_or(provider);
        let found = read(&run, provider, name).await.map_err(|f| request_error(&run, name, f))?;
        if let Some(stored) = found {
            return present(&run, name, key, stored, false);
        }
        let sent = run.exchange(provider, Purpose::Submit, &|| provider.keypair_import(name, key)).await;
        let doubt = match sent {
            Exchange::Answered(response) => match provider.keypair_imported(&response, name) {
                Ok(stored) => return Ok(KeypairEnsured::new(name, stored.id, true)),
                // Refused as a duplicate, or for a reason the cloud does not name: the read says which.
                Err(failure) => failure,
            },
            Exchange::NotSent(failure) => return Err(request_error(&run, name, failure)),
            // It may have been applied: the read settles it.
            Exchange::NoAnswer(failure) => failure,
            Exchange::Refused(failure) | Exchange::Held(Halt::Aborted(failure)) => {
                return Err(request_error(&run, name, failure));
            }
            Exchange::Held(_) => return Err(request_error(&run, name, run.stop_failure())),
        };
        match read(&run, provider, name).await {
            // Absent before, there now with this key: this import made it.
            Ok(Some(stored)) => present(&run, name, key, stored, true),
            Ok(None) => Err(request_error(&run, name, doubt)),
            Err(failure) => Err(request_error(&run, name, failure)),
        }
    }
}

/// The key pair found holds `key`, or the name is taken by another key.
fn present(
    run: &RunState<'_>,
    name: &str,
    key: &PublicKey,
    stored: StoredKeypair,
    imported: bool,
) -> Result<KeypairEnsured, Error> {
    if stored.holds(key) {
        return Ok(KeypairEnsured::new(name, stored.id, imported));
    }
    Err(Error::KeyPair {
        provider: run.provider,
        name: name.to_string(),
        message: format!(
            "exists with another public key ({}; the key given has fingerprint {}): nothing was bound here",
            stored.describe(),
            key.md5_fingerprint()
        ),
    })
}

/// Reads the key pair, asking again within the retry policy when the read
/// was refused for a retryable reason (throttled, 5xx, lost).
async fn read(run: &RunState<'_>, provider: &dyn Provider, name: &str) -> Result<Option<StoredKeypair>, Failure> {
    let net = RunNet { run, provider };
    run.read_retrying(|| async { provider.keypair_found(&net.send(provider.keypair_read(name)?).await?, name) }).await
}

/// A failure that ends the ensuring: refused credentials as such, the rest
/// as a key-pair error naming what happened.
fn request_error(run: &RunState<'_>, name: &str, failure: Failure) -> Error {
    let provider = run.provider;
    let failure =
        run.aborted().filter(|f| matches!(f.kind, FailureKind::Auth | FailureKind::Permission)).unwrap_or(failure);
    match failure.kind {
        FailureKind::Auth if run.no_credentials.get().is_some() => {
            Error::NoCredentials { provider, failure: Box::new(failure) }
        }
        FailureKind::Auth => Error::Authentication { provider, failure: Box::new(failure) },
        FailureKind::Permission => Error::PermissionDenied { provider, failure: Box::new(failure) },
        _ => Error::KeyPair { provider, name: name.to_string(), message: failure.to_string() },
    }
}
