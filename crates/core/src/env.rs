//! Where builders read configuration from: environment variables and profile
//! files, behind a trait so tests never touch the real ones.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Largest configuration file read.
pub const MAX_CONFIG_FILE_BYTES: u64 = 1024 * 1024;

/// The environment a builder reads: variables, files, the home directory.
pub trait ConfigEnv: Send + Sync {
    /// A variable's value; unset and empty are the same.
    fn var(&self, name: &str) -> Option<String>;
    /// A file's text, if it exists and is small enough.
    fn read_file(&self, path: &Path) -> Option<String>;
    /// The user's home directory.
    fn home_dir(&self) -> Option<PathBuf>;

    /// The first of several variables that is set.
    fn first_var(&self, names: &[&str]) -> Option<String> {
        names.iter().find_map(|n| self.var(n))
    }
}

/// The process environment and file system.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemEnv;

impl ConfigEnv for SystemEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }

    fn read_file(&self, path: &Path) -> Option<String> {
        let file = std::fs::File::open(path).ok()?;
        let mut text = String::new();
        file.take(MAX_CONFIG_FILE_BYTES).read_to_string(&mut text).ok()?;
        Some(text)
    }

    fn home_dir(&self) -> Option<PathBuf> {
        std::env::var_os("HOME").or_else(|| std::env::var_os("USERPROFILE")).map(PathBuf::from)
    }
}

/// A fixed environment, for tests and for embedding.
#[derive(Clone, Default)]
pub struct StaticEnv {
    vars: HashMap<String, String>,
    files: HashMap<PathBuf, String>,
    home: Option<PathBuf>,
}

impl StaticEnv {
    /// An empty environment.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets a variable.
    pub fn with_var(mut self, name: &str, value: &str) -> Self {
        self.vars.insert(name.to_string(), value.to_string());
        self
    }

    /// Adds a file.
    pub fn with_file(mut self, path: impl Into<PathBuf>, text: &str) -> Self {
        self.files.insert(path.into(), text.to_string());
        self
    }

    /// Sets the home directory.
    pub fn with_home(mut self, home: impl Into<PathBuf>) -> Self {
        self.home = Some(home.into());
        self
    }
}

impl ConfigEnv for StaticEnv {
    fn var(&self, name: &str) -> Option<String> {
        self.vars.get(name).filter(|v| !v.is_empty()).cloned()
    }

    fn read_file(&self, path: &Path) -> Option<String> {
        self.files.get(path).cloned()
    }

    fn home_dir(&self) -> Option<PathBuf> {
        self.home.clone()
    }
}

/// Another environment seen through one named profile: the variables that
/// name a profile answer `name`, the variables that say where the profile
/// files are pass through, and every other variable reads as unset. A
/// builder reading it finds that profile's credentials and nothing from the
/// process environment, so a fleet row naming a profile gets that profile
/// even where the environment holds other keys.
pub struct ProfileEnv<'a> {
    inner: &'a dyn ConfigEnv,
    name: &'a str,
    profile_vars: &'a [&'a str],
    location_vars: &'a [&'a str],
}

impl<'a> ProfileEnv<'a> {
    /// `inner` through the profile `name`, which `profile_vars` name;
    /// `location_vars` (file locations) read through.
    pub fn new(
        inner: &'a dyn ConfigEnv,
        name: &'a str,
        profile_vars: &'a [&'a str],
        location_vars: &'a [&'a str],
    ) -> Self {
        Self { inner, name, profile_vars, location_vars }
    }
}

impl ConfigEnv for ProfileEnv<'_> {
    fn var(&self, name: &str) -> Option<String> {
        if self.profile_vars.contains(&name) {
            return Some(self.name.to_string());
        }
        self.location_vars.contains(&name).then(|| self.inner.var(name)).flatten()
    }

    fn read_file(&self, path: &Path) -> Option<String> {
        self.inner.read_file(path)
    }

    fn home_dir(&self) -> Option<PathBuf> {
        self.inner.home_dir()
    }
}

/// The `key = value` pairs of one `[section]` of an INI credentials file,
/// as the clouds' SDKs read them: `#` and `;` start comments, keys and
/// values are trimmed, lines outside the section are ignored.
pub fn ini_section(text: &str, section: &str) -> Vec<(String, String)> {
    let mut current = String::new();
    let mut pairs = Vec::new();
    for line in text.lines() {
        let line = line.split(['#', ';']).next().unwrap_or("").trim();
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = name.trim().to_string();
            continue;
        }
        if current != section {
            continue;
        }
        if let Some((key, value)) = line.split_once('=') {
            pairs.push((key.trim().to_string(), value.trim().to_string()));
        }
    }
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ini_section_reads_only_its_section() {
        let text = "[other]\nsecret_id = no\n\n[default] \nsecret_id = AKID # the id\n; a comment\nsecret_key=sk\nnot a pair\n";
        assert_eq!(
            ini_section(text, "default"),
            [("secret_id".to_string(), "AKID".to_string()), ("secret_key".to_string(), "sk".to_string())]
        );
        assert!(ini_section(text, "missing").is_empty());
    }

    #[test]
    fn a_profile_env_hides_every_variable_but_the_profile_and_file_locations() {
        let inner = StaticEnv::new()
            .with_var("KEY", "from-env")
            .with_var("FILE", "/etc/creds")
            .with_var("PROFILE", "other")
            .with_file("/etc/creds", "text")
            .with_home("/home/u");
        let env = ProfileEnv::new(&inner, "work", &["PROFILE", "PROFILE2"], &["FILE"]);
        assert_eq!(env.var("PROFILE").as_deref(), Some("work"));
        assert_eq!(env.var("PROFILE2").as_deref(), Some("work"));
        assert_eq!(env.var("FILE").as_deref(), Some("/etc/creds"));
        assert_eq!(env.var("KEY"), None);
        assert_eq!(env.read_file(Path::new("/etc/creds")).as_deref(), Some("text"));
        assert_eq!(env.home_dir(), Some(PathBuf::from("/home/u")));
    }
}
