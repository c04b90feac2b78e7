//! `--output-dir` (or `--mock`'s `./songbind-output`): every output
//! downloaded at once, each with its own progress bar, as
//! `<id>-v<version>.<ext>`. Job ids are unique, so a new job never meets
//! the files of an earlier one.
//!
//! Names are built from the job id and the URL's extension with every
//! character outside `[A-Za-z0-9_-]` replaced, so that an id or URL from the
//! provider can never point outside the directory.
//!
//! A file already in the directory is never replaced without `--force`
//! (the library's `Downloader::overwrite`): that download fails, naming the
//! file and `--force`, and the file is left as it was.
//!
//! An ElevenLabs compose answers the audio itself, named only by its
//! answer (`song-id`, content type): it is written to a hidden
//! [`Partial`] file first, then [`keep`]s its name under the same rule.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use songbind::{Downloader, Error};

use crate::failure::{Failure, describe};
use crate::output::Report;
use crate::progress::JobProgress;

/// Longest id kept in a file name.
const MAX_ID_CHARS: usize = 80;

/// Creates `dir` (and its parents) before anything is sent, so that a
/// directory that cannot be written costs no job. `named` is what the
/// refusal names: `--output-dir`, or `--mock`'s own default directory.
pub async fn prepare(dir: &Path, named: &str) -> Result<(), Failure> {
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|e| Failure::invalid(named, format!("{}: {e}", dir.display())))
}

/// Downloads every output of `report` into `dir`, recording each file in
/// the report; files already there are replaced only with `force`. Every
/// download is tried; the first failure is returned.
pub async fn download_all(
    dir: &Path,
    report: &mut Report,
    progress: &JobProgress,
    force: bool,
) -> Result<(), Failure> {
    let downloader = Downloader::new().overwrite(force);
    let id = report.id.clone();
    let jobs = report.outputs.iter().enumerate().map(|(index, output)| {
        let version = output.version.unwrap_or(index as u32 + 1);
        let path = dir.join(file_name(&id, version, &output.url));
        let bar = progress.download_bar(&format!("v{version}"), &path.display().to_string());
        let downloader = downloader.clone();
        let url = output.url.clone();
        async move {
            let result = downloader
                .download(&url, &path, |so_far, total| {
                    if let Some(total) = total {
                        bar.set_length(total);
                    }
                    bar.set_position(so_far);
                })
                .await;
            match &result {
                Ok(_) => bar.finish(),
                Err(_) => bar.abandon_with_message("failed"),
            }
            result.map(|_| path).map_err(|error| {
                Failure::Runtime(format!(
                    "downloading v{version} from {url} failed: {}",
                    explain(&error)
                ))
            })
        }
    });
    let results = futures::future::join_all(jobs).await;
    let mut first_failure = None;
    for (output, result) in report.outputs.iter_mut().zip(results) {
        match result {
            Ok(path) => output.file = Some(path),
            Err(failure) => {
                first_failure.get_or_insert(failure);
            }
        }
    }
    first_failure.map_or(Ok(()), Err)
}

/// What went wrong, in the command's terms: a file in the way says to pass
/// `--force` (the library's own message names `overwrite(true)`).
fn explain(error: &Error) -> String {
    match error {
        Error::Io { path, source } if source.kind() == ErrorKind::AlreadyExists => {
            format!("{path} already exists and was left untouched; pass --force to replace it")
        }
        other => describe(other),
    }
}

/// `<id>-v<version>.<ext>`, safe to join to a directory.
fn file_name(id: &str, version: u32, url: &str) -> PathBuf {
    PathBuf::from(format!("{}-v{version}.{}", stem(id), extension(url)))
}

/// `id` made safe for a file name (`song` when empty): at most
/// [`MAX_ID_CHARS`] characters, each outside `[A-Za-z0-9_-]` replaced by
/// `_`, and a leading `-` too (a name a command would read as a flag).
pub fn stem(id: &str) -> String {
    let id: String = id
        .chars()
        .take(MAX_ID_CHARS)
        .enumerate()
        .map(|(index, c)| {
            if c.is_ascii_alphanumeric() || c == '_' || (c == '-' && index > 0) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if id.is_empty() { "song".to_owned() } else { id }
}

/// The extension for an audio content type, only ever a known audio one
/// (`audio/mpeg`: `mp3`, `audio/wav` or `audio/x-wav`: `wav`, `audio/ogg`:
/// `ogg`, `audio/opus`: `opus`, `audio/pcm`: `pcm`, `audio/basic`: `ulaw`,
/// `audio/alaw`: `alaw`, `audio/flac`: `flac`, `audio/aac`: `aac`), else
/// `audio`: never one that another file beside it has (`json`).
pub fn extension_for(content_type: Option<&str>) -> String {
    let essence = content_type
        .and_then(|t| t.split(';').next())
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let subtype = essence.strip_prefix("audio/").unwrap_or_default();
    let subtype = subtype.strip_prefix("x-").unwrap_or(subtype);
    match subtype {
        "mpeg" | "mp3" | "mpeg3" | "mpeg-3" => "mp3",
        "wav" | "wave" | "vnd.wave" => "wav",
        "ogg" => "ogg",
        "opus" => "opus",
        "pcm" | "l16" => "pcm",
        "basic" | "ulaw" | "mulaw" | "pcmu" => "ulaw",
        "alaw" | "pcma" => "alaw",
        "flac" => "flac",
        "aac" => "aac",
        _ => "audio",
    }
    .to_owned()
}

/// A hidden file being written in the output directory, removed when
/// dropped unless it was [`keep`]t under its final name.
pub struct Partial {
    /// Where it is.
    pub path: PathBuf,
    /// Whether it is still ours to remove.
    armed: bool,
}

impl Partial {
    /// Creates `<dir>/.songbind-<uuid>.part` exclusively (never through a
    /// link), for writing.
    pub async fn create(dir: &Path) -> std::io::Result<(Self, tokio::fs::File)> {
        let path = dir.join(format!(".songbind-{}.part", uuid::Uuid::new_v4()));
        let file = songbind::files::create_new(&path).await?;
        Ok((Self { path, armed: true }, file))
    }

    /// Leaves the file where it is (the caller names it in a message).
    pub fn abandon(mut self) -> PathBuf {
        self.armed = false;
        std::mem::take(&mut self.path)
    }
}

impl Drop for Partial {
    fn drop(&mut self) {
        if self.armed {
            // Ours: created exclusively. Removing never follows a link.
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Gives `partial` its final name `path` ([`songbind::files::place`]): a
/// file already there is replaced only with `force`, and then only a
/// regular file (never a link); otherwise `partial` stays as it is.
pub async fn keep(
    partial: Partial,
    path: &Path,
    force: bool,
) -> Result<(), (Partial, std::io::Error)> {
    match songbind::files::place(&partial.path, path, force).await {
        // After a hard link the `.part` name is gone (or dropping removes
        // it); after a rename it is gone already.
        Ok(()) => Ok(()),
        Err(error) => Err((partial, error)),
    }
}

/// The extension of the URL's last path segment (`wav`, `mp3`, `flac`), or
/// `audio` when it has none that looks like one.
fn extension(url: &str) -> String {
    let path = url.split(['?', '#']).next().unwrap_or_default();
    let after_host = path.split_once("://").map_or(path, |(_, rest)| rest);
    let last = after_host
        .split_once('/')
        .map_or("", |(_, path)| path)
        .rsplit('/')
        .next()
        .unwrap_or_default();
    match last.rsplit_once('.') {
        Some((stem, ext))
            if !stem.is_empty()
                && (1..=5).contains(&ext.len())
                && ext.chars().all(|c| c.is_ascii_alphanumeric()) =>
        {
            ext.to_ascii_lowercase()
        }
        _ => "audio".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_the_id_the_version_and_the_url() {
        assert_eq!(
            file_name("msg_1", 2, "http://h/files/a.WAV?sig=x"),
            PathBuf::from("msg_1-v2.wav")
        );
        assert_eq!(
            file_name("op_abc", 1, "https://cdn.example/x/y.flac#t"),
            PathBuf::from("op_abc-v1.flac")
        );
    }

    #[test]
    fn compose_extensions_come_from_the_content_type() {
        assert_eq!(extension_for(Some("audio/mpeg")), "mp3");
        assert_eq!(extension_for(Some("audio/wav")), "wav");
        assert_eq!(extension_for(Some("Audio/X-WAV; codecs=1")), "wav");
        assert_eq!(extension_for(Some("audio/pcm")), "pcm");
        assert_eq!(extension_for(Some("audio/opus")), "opus");
        assert_eq!(extension_for(Some("audio/../../x")), "audio");
        assert_eq!(extension_for(Some("application/octet-stream")), "audio");
        assert_eq!(extension_for(None), "audio");
    }

    #[tokio::test]
    async fn a_kept_file_never_replaces_another_unless_forced() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("song.wav");
        std::fs::write(&target, b"old").unwrap();
        let (partial, file) = Partial::create(dir.path()).await.unwrap();
        drop(file);
        std::fs::write(&partial.path, b"new").unwrap();
        let (partial, error) = keep(partial, &target, false).await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&target).unwrap(), b"old");
        keep(partial, &target, true)
            .await
            .map_err(|(_, e)| e)
            .unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"new");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_file_name_never_starts_with_a_dash() {
        assert_eq!(stem("-rf"), "_rf");
        assert_eq!(stem("--"), "_-");
        assert_eq!(
            file_name("-rf", 1, "http://h/a.mp3"),
            PathBuf::from("_rf-v1.mp3")
        );
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn force_never_replaces_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        let target = dir.path().join("song.wav");
        std::os::unix::fs::symlink(&victim, &target).unwrap();
        let (partial, file) = Partial::create(dir.path()).await.unwrap();
        drop(file);
        let (partial, error) = keep(partial, &target, true).await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        drop(partial);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn ids_and_urls_cannot_leave_the_directory() {
        let name = file_name("../../etc/passwd", 1, "http://h/../.bashrc");
        assert_eq!(name, PathBuf::from("______etc_passwd-v1.audio"));
        assert_eq!(name.components().count(), 1);
        assert_eq!(
            file_name("", 1, "http://h.example"),
            PathBuf::from("song-v1.audio")
        );
        assert_eq!(
            file_name("a/b", 1, "http://h/x.tar.gz/../y"),
            PathBuf::from("a_b-v1.audio")
        );
    }
}
