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
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

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

/// What a fleet run is: one journal file holds every target's records, and
/// a journal of another fleet (other rows, key pair or operation) is refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FleetHeader {
    /// `bind` or `unbind`.
    pub operation: String,
    /// The key pair (name or id), if one was named.
    pub keypair: Option<String>,
    /// A digest of the fleet's rows (provider, region, profile, endpoint, instance).
    pub rows: String,
    /// How many targets the rows form.
    pub targets: u32,
    /// Version of the tool that wrote it (informational).
    pub version: String,
}

impl FleetHeader {
    /// A header for `operation` over the rows whose digest is `rows`, in `targets` targets.
    pub fn new(operation: impl Into<String>, keypair: Option<String>, rows: impl Into<String>, targets: u32) -> Self {
        Self {
            operation: operation.into(),
            keypair,
            rows: rows.into(),
            targets,
            version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }

    fn difference(&self, other: &Self) -> Option<(&'static str, String, String)> {
        let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "(none)".into());
        if self.operation != other.operation {
            return Some(("operation", self.operation.clone(), other.operation.clone()));
        }
        if self.keypair != other.keypair {
            return Some(("key pair", show(&self.keypair), show(&other.keypair)));
        }
        if self.rows != other.rows || self.targets != other.targets {
            return Some(("fleet rows", self.rows.clone(), other.rows.clone()));
        }
        None
    }
}

/// One line of the journal. In a fleet's journal, `target` says whose.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "snake_case")]
enum Record {
    Header(JournalHeader),
    Fleet(FleetHeader),
    Call {
        instances: Vec<InstanceId>,
        token: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        target: Option<u32>,
    },
    Task {
        instance: InstanceId,
        task: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        target: Option<u32>,
    },
    Outcome {
        instance: InstanceId,
        status: String,
        changed: bool,
        error: Option<Failure>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        target: Option<u32>,
    },
}

impl Record {
    /// The target a record belongs to (`None` in a single run's journal).
    fn target(&self) -> Option<u32> {
        match self {
            Self::Header(_) | Self::Fleet(_) => None,
            Self::Call { target, .. } | Self::Task { target, .. } | Self::Outcome { target, .. } => *target,
        }
    }
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
    /// The file holds something other than a journal; it was left as it was.
    #[error(
        "{path} is not a kpbind journal (it does not start with a journal header); it was left as it was: name a new or empty file with --journal"
    )]
    NotAJournal {
        /// The file.
        path: PathBuf,
    },
}

/// A run's journal: open it before the run, pass it in the run options.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: Arc<Mutex<File>>,
    priors: HashMap<InstanceId, Prior>,
    /// Which target of a fleet's journal this is.
    target: Option<u32>,
}

impl Journal {
    /// Opens (or creates) the journal at `path` for the run `header`
    /// describes, reading back what an earlier run recorded.
    pub fn open(path: impl AsRef<Path>, header: JournalHeader) -> Result<Self, JournalError> {
        let path = path.as_ref().to_path_buf();
        let (existing, len) = read_existing(&path)?;
        // Checked before anything is written: a file that is not this run's journal is left as it was.
        match existing.records.first() {
            Some(Record::Header(theirs)) => {
                if let Some((field, theirs, ours)) = theirs.difference(&header) {
                    return Err(JournalError::Mismatch { path, field, theirs, ours });
                }
            }
            Some(Record::Fleet(_)) => {
                let (field, theirs, ours) = ("run", "a fleet".into(), format!("one {} target", header.provider));
                return Err(JournalError::Mismatch { path, field, theirs, ours });
            }
            _ => {}
        }
        let file = append(&path, &existing, len, Record::Header(header))?;
        let priors = replay(&existing.records, None);
        Ok(Self { path, file: Arc::new(Mutex::new(file)), priors, target: None })
    }

    /// Opens (or creates) one journal for a fleet of `header.targets`
    /// targets: one [`Journal`] per target, in order, all writing to `path`.
    pub fn open_fleet(path: impl AsRef<Path>, header: FleetHeader) -> Result<Vec<Self>, JournalError> {
        let path = path.as_ref().to_path_buf();
        let (existing, len) = read_existing(&path)?;
        match existing.records.first() {
            Some(Record::Fleet(theirs)) => {
                if let Some((field, theirs, ours)) = theirs.difference(&header) {
                    return Err(JournalError::Mismatch { path, field, theirs, ours });
                }
            }
            Some(Record::Header(theirs)) => {
                let (field, theirs, ours) = ("run", format!("one {} target", theirs.provider), "a fleet".into());
                return Err(JournalError::Mismatch { path, field, theirs, ours });
            }
            _ => {}
        }
        let targets = header.targets;
        let file = Arc::new(Mutex::new(append(&path, &existing, len, Record::Fleet(header))?));
        Ok((0..targets)
            .map(|target| Self {
                path: path.clone(),
                file: file.clone(),
                priors: replay(&existing.records, Some(target)),
                target: Some(target),
            })
            .collect())
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
    pub(crate) fn call(&self, instances: &[InstanceId], token: Option<&str>) -> Result<(), JournalError> {
        let (instances, token, target) = (instances.to_vec(), token.map(str::to_string), self.target);
        self.write(&Record::Call { instances, token, target })
    }

    /// Records the task an instance's operation runs as.
    pub(crate) fn task(&self, instance: &InstanceId, task: &str) -> Result<(), JournalError> {
        self.write(&Record::Task { instance: instance.clone(), task: task.to_string(), target: self.target })
    }

    /// Records an instance's final outcome.
    pub(crate) fn outcome(&self, instance: &InstanceId, outcome: &InstanceOutcome) -> Result<(), JournalError> {
        let (status, error) = match outcome {
            InstanceOutcome::Bound | InstanceOutcome::Unchanged => ("succeeded", None),
            InstanceOutcome::Failed(f) => ("failed", Some((**f).clone())),
            InstanceOutcome::Unknown(f) => ("unknown", Some((**f).clone())),
        };
        let (instance, status, changed, target) = (instance.clone(), status.into(), outcome.changed(), self.target);
        self.write(&Record::Outcome { instance, status, changed, error, target })
    }
}

/// The records of the journal at `path` (none when there is no file yet),
/// and the file's length; a file that is not a journal is refused.
fn read_existing(path: &Path) -> Result<(Existing, usize), JournalError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(source) => return Err(JournalError::Io { path: path.to_path_buf(), source }),
    };
    let existing = read_records(&bytes).map_err(|()| JournalError::NotAJournal { path: path.to_path_buf() })?;
    Ok((existing, bytes.len()))
}

/// Opens the journal file for appending after the records read: a torn
/// last line from a crash is cut off, and a new file starts with `header`.
fn append(path: &Path, existing: &Existing, len: usize, header: Record) -> Result<File, JournalError> {
    let io = |source| JournalError::Io { path: path.to_path_buf(), source };
    let mut file = OpenOptions::new().create(true).truncate(false).write(true).open(path).map_err(io)?;
    if existing.valid_len < len {
        // A torn last line from a crash: cut it off, so the next record starts a line of its own.
        file.set_len(existing.valid_len as u64).map_err(io)?;
    }
    file.seek(SeekFrom::End(0)).map_err(io)?;
    if existing.records.is_empty() {
        write_line(&mut file, &header).map_err(io)?;
    }
    Ok(file)
}

/// The records of an existing journal, and how many of its bytes hold them.
struct Existing {
    records: Vec<Record>,
    /// Bytes up to the end of the last whole record; a torn line after it is cut off.
    valid_len: usize,
}

/// Reads a journal's bytes. Empty is a new journal. Anything else must start
/// with a header line, and only its last line may be torn (a crash
/// mid-write): then it is `Err(())`, not a journal.
fn read_records(bytes: &[u8]) -> Result<Existing, ()> {
    let mut records = Vec::new();
    let mut valid_len = 0;
    let mut rest = bytes;
    while !rest.is_empty() {
        let (line, whole, len) = match memchr::memchr(b'\n', rest) {
            Some(end) => (&rest[..end], true, end + 1),
            None => (rest, false, rest.len()),
        };
        let last = len == rest.len();
        match serde_json::from_slice::<Record>(line) {
            Ok(record) if whole => {
                if records.is_empty() && !matches!(record, Record::Header(_) | Record::Fleet(_)) {
                    return Err(());
                }
                records.push(record);
                valid_len += len;
            }
            // Only the last line may be torn, and only after a header (or as a torn header).
            _ if last
                && (!records.is_empty()
                    || line.starts_with(TORN_HEADER_START)
                    || line.starts_with(TORN_FLEET_HEADER_START)) => {}
            _ => return Err(()),
        }
        rest = &rest[len..];
    }
    Ok(Existing { records, valid_len })
}

/// How every header line starts, to tell a header torn by a crash from a foreign file.
const TORN_HEADER_START: &[u8] = b"{\"record\":\"header\"";
/// How every fleet header line starts.
const TORN_FLEET_HEADER_START: &[u8] = b"{\"record\":\"fleet\"";

/// One line, flushed and synced before the caller goes on.
fn write_line(file: &mut File, record: &Record) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(record).map_err(std::io::Error::other)?;
    line.push(b'\n');
    file.write_all(&line)?;
    file.flush()?;
    file.sync_data()
}

/// What the records of `target` say, instance by instance: the last word wins.
fn replay(records: &[Record], target: Option<u32>) -> HashMap<InstanceId, Prior> {
    let mut priors: HashMap<InstanceId, Prior> = HashMap::new();
    for record in records.iter().filter(|r| r.target() == target) {
        match record {
            Record::Header(_) | Record::Fleet(_) => {}
            Record::Call { instances, token, .. } => {
                for id in instances {
                    priors.insert(
                        id.clone(),
                        Prior::InFlight { instances: instances.clone(), token: token.clone(), task: None },
                    );
                }
            }
            Record::Task { instance, task, .. } => {
                if let Some(Prior::InFlight { task: slot, .. }) = priors.get_mut(instance) {
                    *slot = Some(task.clone());
                }
            }
            Record::Outcome { instance, status, changed, error, .. } => {
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

    fn temp_path() -> (PathBuf, PathBuf) {
        let dir = std::env::temp_dir().join(format!("kpb-journal-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("run.jsonl");
        (dir, path)
    }

    #[test]
    fn a_file_that_is_not_a_journal_is_refused_and_left_as_it_was() {
        let (dir, path) = temp_path();
        let foreign: [&[u8]; 5] = [
            b"{\"provider\": \"volcengine\", \"instances\": []}\n",
            b"just some notes\nand more\n",
            b"no newline at all",
            b"{\"record\":\"call\",\"instances\":[\"a\"],\"token\":null}\n",
            b"\n",
        ];
        for content in foreign {
            std::fs::write(&path, content).unwrap();
            let err = Journal::open(&path, header()).unwrap_err();
            assert!(matches!(err, JournalError::NotAJournal { .. }), "{err}");
            assert!(err.to_string().contains("not a kpbind journal"), "{err}");
            assert_eq!(std::fs::read(&path).unwrap(), content, "the file was changed");
        }
        // A journal with a bad line in its middle is not one either.
        std::fs::write(&path, b"").unwrap();
        drop(Journal::open(&path, header()).unwrap());
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.extend_from_slice(b"garbage\n{\"record\":\"task\",\"instance\":\"a\",\"task\":\"t\"}\n");
        std::fs::write(&path, &bytes).unwrap();
        assert!(matches!(Journal::open(&path, header()), Err(JournalError::NotAJournal { .. })));
        assert_eq!(std::fs::read(&path).unwrap(), bytes);
        // Another run's journal is left as it was too.
        std::fs::remove_file(&path).unwrap();
        drop(Journal::open(&path, header()).unwrap());
        let before = std::fs::read(&path).unwrap();
        let other = JournalHeader::new("huawei", "bind", Some("kp".into()));
        assert!(matches!(Journal::open(&path, other), Err(JournalError::Mismatch { .. })));
        assert_eq!(std::fs::read(&path).unwrap(), before);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_empty_file_starts_a_journal() {
        let (dir, path) = temp_path();
        std::fs::write(&path, b"").unwrap();
        let j = Journal::open(&path, header()).unwrap();
        j.outcome(&id("a"), &InstanceOutcome::Bound).unwrap();
        drop(j);
        let j = Journal::open(&path, header()).unwrap();
        assert_eq!(j.prior(&id("a")), Some(&Prior::Succeeded { changed: true }));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn torn_lines_are_cut_off_however_often_a_run_crashes() {
        let (dir, path) = temp_path();
        // A header torn by a crash: the journal starts again.
        std::fs::write(&path, b"{\"record\":\"header\",\"provider\":\"volc").unwrap();
        drop(Journal::open(&path, header()).unwrap());
        for round in 0..5 {
            let j = Journal::open(&path, header()).unwrap();
            let vm = id(&format!("vm-{round}"));
            j.call(std::slice::from_ref(&vm), Some("t")).unwrap();
            j.outcome(&vm, &InstanceOutcome::Bound).unwrap();
            drop(j);
            // The crash tears the next record.
            let mut file = OpenOptions::new().append(true).open(&path).unwrap();
            file.write_all(b"{\"record\":\"call\",\"instances\":[\"vm-to").unwrap();
        }
        let j = Journal::open(&path, header()).unwrap();
        for round in 0..5 {
            assert_eq!(j.prior(&id(&format!("vm-{round}"))), Some(&Prior::Succeeded { changed: true }));
        }
        drop(j);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.ends_with('\n'), "the torn line was cut off");
        assert_eq!(text.lines().filter(|l| l.contains("\"header\"")).count(), 1);
        assert!(text.lines().all(|l| serde_json::from_str::<Record>(l).is_ok()), "{text}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_fleet_journal_keeps_each_target_apart_and_refuses_another_fleet() {
        let (dir, path) = temp_path();
        let fleet = || FleetHeader::new("bind", Some("kp".into()), "rows-1", 2);
        {
            let journals = Journal::open_fleet(&path, fleet()).unwrap();
            assert_eq!(journals.len(), 2);
            // The same id in two targets is two instances.
            journals[0].call(&[id("a")], None).unwrap();
            journals[0].outcome(&id("a"), &InstanceOutcome::Bound).unwrap();
            journals[1].call(&[id("a"), id("b")], None).unwrap();
        }
        let journals = Journal::open_fleet(&path, fleet()).unwrap();
        assert_eq!(journals[0].prior(&id("a")), Some(&Prior::Succeeded { changed: true }));
        assert!(matches!(journals[1].prior(&id("a")), Some(Prior::InFlight { .. })));
        assert_eq!(journals[0].prior(&id("b")), None);
        let other_rows = Journal::open_fleet(&path, FleetHeader::new("bind", Some("kp".into()), "rows-2", 2));
        assert!(other_rows.unwrap_err().to_string().contains("fleet rows"));
        let other_op = Journal::open_fleet(&path, FleetHeader::new("unbind", Some("kp".into()), "rows-1", 2));
        assert!(other_op.unwrap_err().to_string().contains("operation"));
        let single = Journal::open(&path, header()).unwrap_err();
        assert!(single.to_string().contains("a fleet"), "{single}");
        let (dir2, single_path) = temp_path();
        drop(Journal::open(&single_path, header()).unwrap());
        assert!(Journal::open_fleet(&single_path, fleet()).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
        std::fs::remove_dir_all(&dir2).unwrap();
    }
}
