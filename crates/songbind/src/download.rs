//! Downloading outputs to disk in constant memory.
//!
//! Output URLs are public (often signed) storage URLs, so downloads use their
//! own HTTP client that never carries an API key.

use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::StreamExt;
use tokio::io::AsyncWriteExt;

use crate::error::{Error, Result};

/// Downloads outputs; cheap to clone.
#[derive(Clone, Debug)]
pub struct Downloader {
    http: reqwest::Client,
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
        Self { http }
    }

    /// Streams `url` to `path`, calling `progress(bytes_so_far, total)` after
    /// every piece (`total` when the server sent a length). The file appears
    /// at `path` only once complete (it is written to `<path>.part` first).
    /// Returns the number of bytes written.
    pub async fn download(
        &self,
        url: &str,
        path: &Path,
        mut progress: impl FnMut(u64, Option<u64>),
    ) -> Result<u64> {
        let response = self.http.get(url).send().await.map_err(Error::Transport)?;
        let status = response.status();
        if !status.is_success() {
            return Err(Error::Io {
                path: path.display().to_string(),
                source: std::io::Error::other(format!("downloading {url} answered HTTP {status}")),
            });
        }
        let total = response.content_length();
        let partial = part_path(path);
        let io = |source| Error::Io {
            path: partial.display().to_string(),
            source,
        };
        let mut file = tokio::fs::File::create(&partial).await.map_err(io)?;
        let mut written = 0u64;
        let mut body = response.bytes_stream();
        let copied: Result<()> = async {
            while let Some(piece) = body.next().await {
                let piece = piece.map_err(Error::Transport)?;
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
            Ok(())
        }
        .await;
        drop(file);
        if let Err(error) = copied {
            let _ = tokio::fs::remove_file(&partial).await;
            return Err(error);
        }
        tokio::fs::rename(&partial, path)
            .await
            .map_err(|source| Error::Io {
                path: path.display().to_string(),
                source,
            })?;
        Ok(written)
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
