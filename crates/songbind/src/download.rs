//! Downloading outputs to disk in constant memory.
//!
//! Output URLs are public (often signed) storage URLs, so downloads use their
//! own HTTP client that never carries an API key.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::StreamExt;
use tokio::io::AsyncWriteExt;

use crate::error::{Error, Result};

/// Downloads outputs; cheap to clone.
///
/// # Files on disk
///
/// A download is written to `<path>.part` and renamed to `path` once
/// complete, so that `path` never holds half a file.
///
/// * **An existing file is never replaced unless asked.** Without
///   [`Downloader::overwrite`]`(true)`, a download to a path that already
///   exists (a file, a directory, a symbolic link, even a dangling one) fails
///   with [`Error::Io`] naming the path, whose source has the kind
///   [`std::io::ErrorKind::AlreadyExists`], before anything is fetched; a
///   file that appears at `path` while the download runs is not replaced
///   either (on Unix, the finished `.part` is hard-linked to `path`, which
///   fails if `path` exists). On a file system without hard links, the last
///   step falls back to checking that `path` is free and renaming: a file
///   created between the check and the rename is then replaced. With
///   `overwrite(true)`, the finished file is renamed over `path` (a symbolic
///   link there is replaced, never followed).
/// * **`<path>.part` is created exclusively** (`O_CREAT | O_EXCL`, which
///   never follows a symbolic link), so a download is never written through
///   a link planted in its place. If `<path>.part` already exists (left by
///   an interrupted download, or written by another one still running) the
///   download fails with [`Error::Io`] naming it: with `overwrite(true)` a
///   stale `.part` that is a regular file is removed first (removing a path
///   never follows a link); anything else there (a symbolic link, a
///   directory) is always refused, to be removed by hand.
/// * A failed download removes its own `.part`.
#[derive(Clone, Debug)]
pub struct Downloader {
    http: reqwest::Client,
    overwrite: bool,
}

impl Default for Downloader {
    fn default() -> Self {
        Self::new()
    }
}

impl Downloader {
    /// A downloader with a 10 s connect timeout and a 60 s idle-read timeout.
    pub fn new() -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(Duration::from_secs(60))
            .build()
            .unwrap_or_default();
        Self {
            http,
            overwrite: false,
        }
    }

    /// Whether a file already at the destination may be replaced (default
    /// `false`: such a download fails and the file is left untouched). See
    /// [the type's documentation](Downloader#files-on-disk).
    pub fn overwrite(mut self, overwrite: bool) -> Self {
        self.overwrite = overwrite;
        self
    }

    /// Streams `url` to `path`, calling `progress(bytes_so_far, total)` after
    /// every piece (`total` when the server sent a length). The file appears
    /// at `path` only once complete (it is written to `<path>.part` first).
    /// Returns the number of bytes written.
    ///
    /// Fails without fetching anything if `path` exists and
    /// [`Downloader::overwrite`] is off, or if `<path>.part` is in the way:
    /// see [the type's documentation](Downloader#files-on-disk).
    pub async fn download(
        &self,
        url: &str,
        path: &Path,
        mut progress: impl FnMut(u64, Option<u64>),
    ) -> Result<u64> {
        if path.file_name().is_none() {
            return Err(Error::validation(
                "path",
                format!("{} does not name a file", path.display()),
            ));
        }
        if !self.overwrite {
            refuse_existing(path).await?;
        }
        let partial = part_path(path);
        let io = |source| Error::Io {
            path: partial.display().to_string(),
            source,
        };
        let mut file = self.create_partial(&partial).await?;
        let copied = async {
            let response = self.http.get(url).send().await.map_err(Error::from)?;
            let status = response.status();
            if !status.is_success() {
                return Err(Error::Io {
                    path: path.display().to_string(),
                    source: std::io::Error::other(format!(
                        "downloading {url} answered HTTP {status}"
                    )),
                });
            }
            let total = response.content_length();
            let mut written = 0u64;
            let mut body = response.bytes_stream();
            while let Some(piece) = body.next().await {
                let piece = piece.map_err(Error::from)?;
                file.write_all(&piece).await.map_err(io)?;
                written += piece.len() as u64;
                progress(written, total);
            }
            file.flush().await.map_err(io)?;
            if let Some(total) = total
                && total != written
            {
                return Err(io(std::io::Error::other(format!(
                    "expected {total} bytes, got {written}"
                ))));
            }
            file.sync_all().await.map_err(io)?;
            Ok(written)
        }
        .await;
        drop(file);
        let finished = match copied {
            Ok(written) => self.put_in_place(&partial, path).await.map(|()| written),
            Err(error) => Err(error),
        };
        if finished.is_err() {
            // Ours: it was created exclusively. Removing a path never
            // follows a link, whatever was put there since.
            let _ = tokio::fs::remove_file(&partial).await;
        }
        finished
    }

    /// Creates `partial` exclusively, never through a link; with
    /// `overwrite`, a stale regular file there is removed first.
    async fn create_partial(&self, partial: &Path) -> Result<tokio::fs::File> {
        let io = |source| Error::Io {
            path: partial.display().to_string(),
            source,
        };
        match crate::files::create_new(partial).await {
            Ok(file) => return Ok(file),
            Err(error) if error.kind() != ErrorKind::AlreadyExists => return Err(io(error)),
            Err(_) => {}
        }
        let existing = tokio::fs::symlink_metadata(partial).await.map_err(io)?;
        if !existing.file_type().is_file() {
            return Err(io(std::io::Error::other(
                "already exists and is not a regular file (a symbolic link or a directory); \
                 a download is never written through it or replaces it: remove it by hand",
            )));
        }
        if !self.overwrite {
            return Err(io(std::io::Error::new(
                ErrorKind::AlreadyExists,
                "already exists: a partial download, left by an interrupted download or \
                 written by one still running; remove it, or pass overwrite(true) to replace it",
            )));
        }
        tokio::fs::remove_file(partial).await.map_err(io)?;
        crate::files::create_new(partial).await.map_err(io)
    }

    /// Moves the finished `partial` to `path`, replacing a file there only
    /// with `overwrite`, and then only a regular file ([`crate::files::place`]).
    async fn put_in_place(&self, partial: &Path, path: &Path) -> Result<()> {
        crate::files::place(partial, path, self.overwrite)
            .await
            .map_err(|source| {
                if source.kind() == ErrorKind::AlreadyExists && !self.overwrite {
                    already_exists(path)
                } else {
                    Error::Io {
                        path: path.display().to_string(),
                        source,
                    }
                }
            })
    }
}

/// Fails if anything (even a dangling symbolic link) is at `path`
/// ([`crate::files::vacant`]), naming `overwrite`.
async fn refuse_existing(path: &Path) -> Result<()> {
    crate::files::vacant(path).await.map_err(|source| {
        if source.kind() == ErrorKind::AlreadyExists {
            already_exists(path)
        } else {
            Error::Io {
                path: path.display().to_string(),
                source,
            }
        }
    })
}

/// The refusal to replace `path`.
fn already_exists(path: &Path) -> Error {
    Error::Io {
        path: path.display().to_string(),
        source: std::io::Error::new(
            ErrorKind::AlreadyExists,
            "already exists and was left untouched; pass overwrite(true) to replace it",
        ),
    }
}

fn part_path(path: &Path) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".part");
    path.with_file_name(name)
}
