//! The providers songbind generates clients for: every `specs/<name>.yaml`.
//!
//! A provider is described by its spec alone, so adding one touches no file
//! here: `info.x-songbind-name` gives the name as people write it, and an
//! operation the generator cannot express carries `x-songbind-skip: <why>`
//! (it stays in the spec, and its schemas still become types).

use std::path::Path;

use anyhow::{Context, Result, bail};

/// One provider: its spec and the crate its generated code goes to.
pub struct Provider {
    /// Short name (the slug), as in `specs/<name>.yaml` and
    /// `crates/songbind-<name>`.
    pub name: String,
}

impl Provider {
    pub fn spec_path(&self) -> String {
        format!("specs/{}.yaml", self.name)
    }

    pub fn crate_dir(&self) -> String {
        format!("crates/songbind-{}", self.name)
    }
}

/// Every spec under `root/specs`, in name order.
pub fn all(root: &Path) -> Result<Vec<Provider>> {
    let dir = root.join("specs");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
                bail!("{}: not a UTF-8 file name", path.display());
            };
            names.push(stem.to_owned());
        }
    }
    names.sort();
    Ok(names.into_iter().map(|name| Provider { name }).collect())
}
