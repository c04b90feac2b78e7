//! MusicGPT's multipart `POST /Remix`, which the generator cannot express.
//!
//! The form is built from the generated [`RemixForm`] type (so its fields
//! stay in step with the spec); the audio file is streamed from disk, never
//! read whole into memory.

use std::path::Path;

use reqwest::multipart::{Form, Part};
use serde_json::Value;
use songbind_musicgpt::types::{RemixForm, RemixResponse};
use tokio_util::io::ReaderStream;

use crate::error::{Error, ProviderName, Result};

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
    if let UploadAudio::File(path) = audio {
        multipart = multipart.part("audio_file", file_part(path).await?);
    }
    let response = http
        .post(format!("{base_url}/Remix"))
        .header(reqwest::header::ACCEPT, "application/json")
        .multipart(multipart)
        .send()
        .await
        .map_err(Error::Transport)?;
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.text().await.map_err(Error::Transport)?;
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

/// A streaming part for `path`, with its length, file name and a content
/// type guessed from the extension.
async fn file_part(path: &Path) -> Result<Part> {
    let io = |source| Error::Io {
        path: path.display().to_string(),
        source,
    };
    let file = tokio::fs::File::open(path).await.map_err(io)?;
    let len = file.metadata().await.map_err(io)?.len();
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "audio".to_owned());
    let body = reqwest::Body::wrap_stream(ReaderStream::with_capacity(file, 64 * 1024));
    Part::stream_with_length(body, len)
        .file_name(name)
        .mime_str(content_type(path))
        .map_err(|e| Error::validation("audio_file", e.to_string()))
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
