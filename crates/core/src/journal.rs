//! An append-only JSON Lines journal of a run, so that a crashed or
//! interrupted run can be resumed without losing or repeating anything.
//!
//! Each record is written, flushed and synced before the step it describes
//! goes on: a header (what the run is), each call before it is sent (its
//! instances and idempotency token), each task id once known, and each
//! instance's final outcome. Opening an existing journal reads it back (a
//! torn last line from a crash is ignored) into what a resumed run needs.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::ids::InstanceId;
use crate::report::{Failure, FailureKind, InstanceOutcome};

/// What a run is: a journal written for another run is refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct JournalHeader {
    /// Provider name.
    pub provider: String,
    /// `bind` or `unbind`.
    pub operation: String,
    /// The key pair (name or id), if one was named.
    pub keypair: Option<String>,
    /// Region, when known.
    pub region: Option<String>,
    /// Host of the endpoint calls go to.
    pub endpoint_host: Option<String>,
    /// Base of the idempotency tokens, if given.
    pub token_base: Option<String>,
    /// Version of the tool that wrote it (informational).
    pub version: String,
}

impl JournalHeader {
    /// A header for a run of `operation` on `provider`.
    pub fn new(provider: impl Into<String>, operation: impl Into<String>, keypair: Option<String>) -> Self {
        Self {
            provider: provider.into(),
            operation: operation.into(),
            keypair,
            region: None,
            endpoint_host: None,
            token_base: None,
            version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }

    /// Sets the region.
    pub fn region(mut self, region: Option<String>) -> Self {
        self.region = region;
        self
    }

    /// Sets the endpoint host.
    pub fn endpoint_host(mut self, host: Option<String>) -> Self {
        self.endpoint_host = host;
        self
    }

    /// Sets the token base.
    pub fn token_base(mut self, base: Option<String>) -> Self {
        self.token_base = base;
        self
    }

    /// The first field that differs from `other`, as (name, this, other).
    fn difference(&self, other: &Self) -> Option<(&'static str, String, String)> {
        let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "(none)".into());
        if self.provider != other.provider {
            return Some(("provider", self.provider.clone(), other.provider.clone()));
        }
        if self.operation != other.operation {
            return Some(("operation", self.operation.clone(), other.operation.clone()));
        }
        if self.keypair != other.keypair {
            return Some(("key pair", show(&self.keypair), show(&other.keypair)));
        }
        if self.region.is_some() && other.region.is_some() && self.region != other.region {
            return Some(("region", show(&self.region), show(&other.region)));
        }
        if self.endpoint_host.is_some() && other.endpoint_host.is_some() && self.endpoint_host != other.endpoint_host {
            return Some(("endpoint host", show(&self.endpoint_host), show(&other.endpoint_host)));
        }
        None
    }
}

/// One line of the journal.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "snake_case")]
enum Record {
    Header(JournalHeader),
    Call { instances: Vec<InstanceId>, token: Option<String> },
    Task { instance: InstanceId, task: String },
    Outcome { instance: InstanceId, status: String, changed: bool, error: Option<Failure> },
}

/// What the journal says about one instance when a run resumes.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Prior {
    /// It ended in the requested state: reported from the journal, not sent.
    Succeeded {
        /// Whether the earlier run changed it.
        changed: bool,
    },
    /// A call carrying it may have been applied and no outcome was recorded:
    /// settle it before anything else.
    InFlight {
        /// The recorded call, to resend as it was when it carried a token.
        instances: Vec<InstanceId>,
        /// Its idempotency token.
        token: Option<String>,
        /// Its task, when one was recorded.
        task: Option<String>,
    },
}

/// Why a journal could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JournalError {
    /// Reading or writing the file failed.
    #[error("journal {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The journal belongs to another run.
    #[error("journal {path} was written for {field} {theirs}, not {ours}; use another --journal file")]
    Mismatch {
        /// The file.
        path: PathBuf,
        /// Which field differs.
        field: &'static str,
        /// The journal's value.
        theirs: String,
        /// This run's value.
        ours: String,
    },
    /// The journal's first line is not a header.
    #[error("journal {path} does not start with a header; it is not a kpbind journal")]
    NotAJournal {
        /// The file.
        path: PathBuf,
    },
}

/// A run's journal: open it before the run, pass it in the run options.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: Mutex<File>,
    priors: HashMap<InstanceId, Prior>,
}

impl Journal {
    /// Opens (or creates) the journal at `path` for the run `header`
    /// describes, reading back what an earlier run recorded.
    pub fn open(path: impl AsRef<Path>, header: JournalHeader) -> Result<Self, JournalError> {
        let path = path.as_ref().to_path_buf();
        let io = |source| JournalError::Io { path: path.clone(), source };
        let mut priors = HashMap::new();
        let existing = match File::open(&path) {
            Ok(file) => Some(file),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(io(e)),
        };
        let mut has_header = false;
        if let Some(file) = existing {
            let lines: Vec<String> = BufReader::new(file).lines().collect::<Result<_, _>>().map_err(io)?;
            let mut records = Vec::with_capacity(lines.len());
            for (n, line) in lines.iter().enumerate() {
                match serde_json::from_str::<Record>(line) {
                    Ok(record) => records.push(record),
                    // A torn last line: the crash came mid-write; what it described never went on.
                    Err(_) if n + 1 == lines.len() => {}
                    Err(_) => return Err(JournalError::NotAJournal { path }),
                }
            }
            match records.first() {
                None => {}
                Some(Record::Header(theirs)) => {
                    if let Some((field, theirs, ours)) = theirs.difference(&header) {
                        return Err(JournalError::Mismatch { path, field, theirs, ours });
                    }
                    has_header = true;
                }
                Some(_) => return Err(JournalError::NotAJournal { path }),
            }
            priors = replay(&records);
        }
        let mut file = OpenOptions::new().create(true).append(true).open(&path).map_err(io)?;
        if !has_header {
            write_line(&mut file, &Record::Header(header)).map_err(io)?;
        }
        Ok(Self { path, file: Mutex::new(file), priors })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What the journal says about an instance, if anything to act on.
    pub fn prior(&self, instance: &InstanceId) -> Option<&Prior> {
        self.priors.get(instance)
    }

    /// Instances an earlier run recorded as succeeded.
    pub fn succeeded(&self) -> usize {
        self.priors.values().filter(|p| matches!(p, Prior::Succeeded { .. })).count()
    }

    fn write(&self, record: &Record) -> Result<(), JournalError> {
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        write_line(&mut file, record).map_err(|source| JournalError::Io { path: self.path.clone(), source })
    }

    /// Records a call before it is sent.
    pub fn call(&self, instances: &[InstanceId], token: Option<&str>) -> Result<(), JournalError> {
        self.write(&Record::Call { instances: instances.to_vec(), token: token.map(str::to_string) })
    }

    /// Records the task an instance's operation runs as.
    pub fn task(&self, instance: &InstanceId, task: &str) -> Result<(), JournalError> {
        self.write(&Record::Task { instance: instance.clone(), task: task.to_string() })
    }

    /// Records an instance's final outcome.
    pub fn outcome(&self, instance: &InstanceId, outcome: &InstanceOutcome) -> Result<(), JournalError> {
        let (status, error) = match outcome {
            InstanceOutcome::Bound | InstanceOutcome::Unchanged => ("succeeded", None),
            InstanceOutcome::Failed(f) => ("failed", Some((**f).clone())),
            InstanceOutcome::Unknown(f) => ("unknown", Some((**f).clone())),
        };
        let record =
            Record::Outcome { instance: instance.clone(), status: status.into(), changed: outcome.changed(), error };
        self.write(&record)
    }
}

/// One line, flushed and synced before the caller goes on.
fn write_line(file: &mut File, record: &Record) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(record).map_err(std::io::Error::other)?;
    line.push(b'\n');
    file.write_all(&line)?;
    file.flush()?;
    file.sync_data()
}

/// What the records say, instance by instance: the last word wins.
fn replay(records: &[Record]) -> HashMap<InstanceId, Prior> {
    let mut priors: HashMap<InstanceId, Prior> = HashMap::new();
    for record in records {
        match record {
            Record::Header(_) => {}
            Record::Call { instances, token } => {
                for id in instances {
                    priors.insert(
                        id.clone(),
                        Prior::InFlight { instances: instances.clone(), token: token.clone(), task: None },
                    );
                }
            }
            Record::Task { instance, task } => {
                if let Some(Prior::InFlight { task: slot, .. }) = priors.get_mut(instance) {
                    *slot = Some(task.clone());
                }
            }
            Record::Outcome { instance, status, changed, error } => {
                if status == "succeeded" {
                    priors.insert(instance.clone(), Prior::Succeeded { changed: *changed });
                } else if status == "failed" || error.as_ref().is_some_and(|f| f.kind == FailureKind::Cancelled) {
                    // Not applied: the resumed run sends it like any other.
                    priors.remove(instance);
                }
                // `unknown` keeps what the calls said: it is settled first.
            }
        }
    }
    priors
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> InstanceId {
        InstanceId::new(s).unwrap()
    }

    fn header() -> JournalHeader {
        JournalHeader::new("volcengine", "bind", Some("kp".into())).region(Some("cn-beijing".into()))
    }

    #[test]
    fn records_read_back_and_a_torn_line_is_ignored() {
        let dir = std::env::temp_dir().join(format!("kpb-journal-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("run.jsonl");
        {
            let j = Journal::open(&path, header()).unwrap();
            j.call(&[id("a"), id("b"), id("c")], Some("t1")).unwrap();
            j.outcome(&id("a"), &InstanceOutcome::Bound).unwrap();
            j.outcome(&id("c"), &InstanceOutcome::failed(Failure::new(FailureKind::InstanceNotFound, "gone"))).unwrap();
            j.call(&[id("d")], None).unwrap();
            j.task(&id("d"), "task-9").unwrap();
        }
        // A crash mid-write.
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(b"{\"record\":\"outcome\",\"instance\":\"b\",\"sta").unwrap();
        drop(file);
        let j = Journal::open(&path, header()).unwrap();
        assert_eq!(j.prior(&id("a")), Some(&Prior::Succeeded { changed: true }));
        assert_eq!(
            j.prior(&id("b")),
            Some(&Prior::InFlight { instances: vec![id("a"), id("b"), id("c")], token: Some("t1".into()), task: None })
        );
        assert_eq!(j.prior(&id("c")), None, "failed: sent again like any other");
        assert!(matches!(j.prior(&id("d")), Some(Prior::InFlight { task: Some(t), .. }) if t == "task-9"));
        let other = JournalHeader::new("volcengine", "bind", Some("kp-other".into()));
        let err = Journal::open(&path, other).unwrap_err();
        assert!(err.to_string().contains("key pair kp, not kp-other"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
