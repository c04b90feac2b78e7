//! MusicGPT's multipart `POST /Remix`, which the generator cannot express.
//!
//! The form is built from the generated [`RemixForm`] type (so its fields
//! stay in step with the spec); the audio file is streamed from disk, never
//! read whole into memory.
//!
//! The file is opened and checked before the first byte of the request is
//! sent: anything but a regular file (a directory, a device such as
//! `/dev/zero`, a FIFO, a socket) is refused with [`Error::Validation`]
//! naming the path; a symbolic link to a regular file is followed. The
//! length measured then is the part's `Content-Length`, and exactly that
//! many bytes are sent: a file that shrinks, grows or is rewritten during
//! the upload stops the request (the multipart body is left unfinished, so
//! the server cannot take it for a whole one) and the call fails with
//! [`Error::Io`] naming the path and saying what changed.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use bytes::Bytes;
use reqwest::multipart::{Form, Part};
use serde_json::Value;
use songbind_musicgpt::types::{RemixForm, RemixResponse};
use tokio::io::{AsyncReadExt, Take};

use crate::error::{Error, ProviderName, Result};

/// Size of the pieces the file is read in.
const CHUNK: usize = 64 * 1024;

/// Where the audio of a multipart remix comes from.
#[derive(Clone, Copy, Debug)]
pub(crate) enum UploadAudio<'a> {
    /// Stream this local file as the `audio_file` part.
    File(&'a Path),
    /// No file part: the form's `audio_path` names the audio.
    None,
}

/// Sends `form` (and the file, if any) to `<base_url>/Remix` with `http`,
/// which carries the auth header. One attempt; the caller retries.
pub(crate) async fn post_remix(
    http: &reqwest::Client,
    base_url: &str,
    form: &RemixForm,
    audio: UploadAudio<'_>,
) -> Result<RemixResponse> {
    // Open and check the file before anything is sent.
    let upload = match audio {
        UploadAudio::File(path) => Some(OpenedAudio::open(path).await?),
        UploadAudio::None => None,
    };
    let mut multipart = Form::new();
    let fields = serde_json::to_value(form).map_err(|e| Error::decode("the remix form", e, ""))?;
    for (name, value) in fields.as_object().into_iter().flatten() {
        let text = match value {
            Value::String(text) if name != "audio_file" => text.clone(),
            _ => continue,
        };
        if text.is_empty() && name != "prompt" {
            continue; // optional and unset (webhook_url defaults to "")
        }
        multipart = multipart.text(name.clone(), text);
    }
    let mut failure = None;
    if let Some(upload) = upload {
        let (part, slot) = upload.into_part()?;
        multipart = multipart.part("audio_file", part);
        failure = Some(slot);
    }
    // A failure of the file stream reaches reqwest as a body error: the
    // file's own error, kept aside, is the one to report.
    let file_failure = || failure.as_ref().and_then(FailureSlot::take);
    let sent = http
        .post(format!("{base_url}/Remix"))
        .header(reqwest::header::ACCEPT, "application/json")
        .multipart(multipart)
        .send()
        .await;
    let response = match sent {
        Ok(response) => response,
        Err(error) => return Err(file_failure().unwrap_or(Error::from(error))),
    };
    let status = response.status();
    let headers = response.headers().clone();
    crate::answers::record(status.as_u16(), &headers);
    let body = response.text().await.map_err(Error::from)?;
    // A server may answer before reading the whole body; an upload that was
    // stopped is still a failure.
    if let Some(error) = file_failure() {
        return Err(error);
    }
    if !status.is_success() {
        return Err(Error::from_response(
            ProviderName::MusicGpt,
            status,
            &headers,
            &body,
        ));
    }
    serde_json::from_str(&body).map_err(|e| Error::decode("MusicGPT's /Remix answer", e, &body))
}

/// The audio file, open and checked, with what was measured when it was
/// opened.
struct OpenedAudio {
    path: PathBuf,
    file: tokio::fs::File,
    len: u64,
    modified: Option<SystemTime>,
}

impl OpenedAudio {
    /// Opens `path`, refusing anything but a regular file (symbolic links
    /// are followed). The path is checked before it is opened, so that a
    /// FIFO is refused instead of blocking the open, and the open file is
    /// checked again. A FIFO swapped in between the two can still block the
    /// open; nothing is sent before it returns.
    async fn open(path: &Path) -> Result<Self> {
        let io = |source| Error::Io {
            path: path.display().to_string(),
            source,
        };
        let before = tokio::fs::metadata(path).await.map_err(io)?;
        refuse_unless_regular(path, &before)?;
        let file = tokio::fs::File::open(path).await.map_err(io)?;
        let opened = file.metadata().await.map_err(io)?;
        refuse_unless_regular(path, &opened)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            if (before.dev(), before.ino()) != (opened.dev(), opened.ino()) {
                return Err(io(std::io::Error::other(
                    "the file was replaced while it was being opened for upload",
                )));
            }
        }
        Ok(Self {
            path: path.to_path_buf(),
            file,
            len: opened.len(),
            modified: opened.modified().ok(),
        })
    }

    /// A streaming part of exactly the measured length, with the file name
    /// and a content type guessed from the extension, and the slot where
    /// the stream leaves its error if the file changes under it.
    fn into_part(self) -> Result<(Part, FailureSlot)> {
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "audio".to_owned());
        let mime = content_type(&self.path);
        let len = self.len;
        let slot = FailureSlot::default();
        let reading = Reading {
            reader: self.file.take(len),
            expected: len,
            sent: 0,
            modified: self.modified,
            path: self.path,
            slot: slot.clone(),
        };
        let stream = futures::stream::try_unfold(reading, Reading::next_piece);
        let part = Part::stream_with_length(reqwest::Body::wrap_stream(stream), len)
            .file_name(name)
            .mime_str(mime)
            .map_err(|e| Error::validation("audio_file", e.to_string()))?;
        Ok((part, slot))
    }
}

/// Refuses anything but a regular file, naming `path` and what it is.
fn refuse_unless_regular(path: &Path, metadata: &std::fs::Metadata) -> Result<()> {
    let kind = metadata.file_type();
    if kind.is_file() {
        return Ok(());
    }
    let what = if kind.is_dir() {
        "a directory"
    } else {
        special_kind(&kind)
    };
    Err(Error::validation(
        "audio_file",
        format!(
            "{} is {what}, not a regular file: only regular files can be uploaded",
            path.display()
        ),
    ))
}

#[cfg(unix)]
fn special_kind(kind: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_fifo() {
        "a FIFO (named pipe)"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "a special file"
    }
}

#[cfg(not(unix))]
fn special_kind(_kind: &std::fs::FileType) -> &'static str {
    "a special file"
}

/// Where the file stream leaves the error that stopped it.
#[derive(Clone, Debug, Default)]
struct FailureSlot(Arc<Mutex<Option<Error>>>);

impl FailureSlot {
    /// Keeps `error` (the first one wins).
    fn put(&self, error: Error) {
        let mut slot = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        slot.get_or_insert(error);
    }

    /// The error kept, if any.
    fn take(&self) -> Option<Error> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take()
    }
}

/// The state of the file stream: at most `expected` bytes are read.
struct Reading {
    reader: Take<tokio::fs::File>,
    expected: u64,
    sent: u64,
    modified: Option<SystemTime>,
    path: PathBuf,
    slot: FailureSlot,
}

impl Reading {
    /// The next piece of the file; after the last one, checks that the file
    /// is still what was measured. An error is also left in the slot.
    async fn next_piece(mut self) -> std::io::Result<Option<(Bytes, Self)>> {
        match self.read_piece().await {
            Ok(Some(piece)) => Ok(Some((piece, self))),
            Ok(None) => Ok(None),
            Err(source) => {
                let reported = std::io::Error::new(source.kind(), source.to_string());
                self.slot.put(Error::Io {
                    path: self.path.display().to_string(),
                    source,
                });
                Err(reported)
            }
        }
    }

    async fn read_piece(&mut self) -> std::io::Result<Option<Bytes>> {
        let left = self.expected - self.sent;
        if left == 0 {
            self.check_unchanged().await?;
            return Ok(None);
        }
        let mut buffer = vec![0; CHUNK.min(usize::try_from(left).unwrap_or(CHUNK))];
        let read = self.reader.read(&mut buffer).await?;
        if read == 0 {
            return Err(std::io::Error::new(
                ErrorKind::UnexpectedEof,
                format!(
                    "the file shrank while it was being uploaded: it ended after {} of the \
                     {} bytes it had when the upload started; the upload was stopped",
                    self.sent, self.expected
                ),
            ));
        }
        buffer.truncate(read);
        self.sent += read as u64;
        Ok(Some(Bytes::from(buffer)))
    }

    /// After the measured length was read: no byte may follow, and the
    /// length and modification time must be those measured at the start.
    async fn check_unchanged(&mut self) -> std::io::Result<()> {
        let file = self.reader.get_mut();
        let mut probe = [0u8; 1];
        if file.read(&mut probe).await? > 0 {
            return Err(std::io::Error::other(format!(
                "the file grew while it was being uploaded (it had {} bytes when the upload \
                 started); the upload was stopped rather than send a corrupt body",
                self.expected
            )));
        }
        let now = file.metadata().await?;
        let rewritten = matches!(
            (self.modified, now.modified().ok()),
            (Some(before), Some(after)) if before != after
        );
        if now.len() != self.expected || rewritten {
            return Err(std::io::Error::other(format!(
                "the file changed while it was being uploaded (it had {} bytes when the upload \
                 started, {} now); the upload was stopped rather than send a corrupt body",
                self.expected,
                now.len()
            )));
        }
        Ok(())
    }
}

fn content_type(path: &Path) -> &'static str {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("mp3") => "audio/mpeg",
        Some("wav") => "audio/wav",
        Some("m4a") => "audio/mp4",
        Some("flac") => "audio/flac",
        Some("ogg") => "audio/ogg",
        _ => "application/octet-stream",
    }
}
