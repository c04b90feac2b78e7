//! The emulated providers: where they live, how they authenticate and what
//! their error bodies look like.

use axum::Json;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// One emulated provider.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Provider {
    /// Soundverse: base URL `<root>/soundverse`.
    Soundverse,
    /// SoundPiece: base URL `<root>/soundpiece`.
    SoundPiece,
    /// MusicGPT: base URL `<root>/musicgpt`.
    MusicGpt,
    /// ElevenLabs Music: base URL `<root>/elevenlabs`.
    ElevenLabs,
}

impl Provider {
    /// Every provider, in a fixed order.
    pub const ALL: [Provider; 4] = [
        Provider::Soundverse,
        Provider::SoundPiece,
        Provider::MusicGpt,
        Provider::ElevenLabs,
    ];

    /// The provider's descriptor, generated from its spec: name, slug, auth
    /// form.
    pub fn info(self) -> songbind_transport::ProviderInfo {
        match self {
            Provider::Soundverse => songbind_soundverse::PROVIDER,
            Provider::SoundPiece => songbind_soundpiece::PROVIDER,
            Provider::MusicGpt => songbind_musicgpt::PROVIDER,
            Provider::ElevenLabs => songbind_elevenlabs::PROVIDER,
        }
    }

    /// The path prefix this provider is served under (`/<slug>`); its base
    /// URL is the emulator's root URL followed by this prefix.
    pub fn prefix(self) -> String {
        format!("/{}", self.name())
    }

    /// The spec's slug (`soundverse`, `soundpiece`, `musicgpt`, `elevenlabs`).
    pub fn name(self) -> &'static str {
        let songbind_transport::ProviderInfo { slug, .. } = self.info();
        slug
    }

    /// Parses a short name as printed by [`Provider::name`].
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }

    /// Checks the key header in the auth form the spec gives
    /// (`securitySchemes`): `Authorization: Bearer <key>`, or the raw key in
    /// `Authorization` or in the provider's own header (`xi-api-key`; a
    /// `Bearer` prefix there is refused, since such a provider does not
    /// take it). Returns the 401 answer when the header is missing or
    /// malformed.
    pub(crate) fn auth_refusal(self, headers: &HeaderMap) -> Option<Response> {
        let auth = self.info().auth;
        let value = headers
            .get(auth.header_name())
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .trim();
        let ok = match auth {
            songbind_transport::AuthScheme::Bearer => value
                .strip_prefix("Bearer ")
                .is_some_and(|key| !key.trim().is_empty()),
            _ => !value.is_empty() && !value.starts_with("Bearer "),
        };
        (!ok).then(|| {
            let form = auth.header_value("<key>");
            let message = format!(
                "Missing or invalid API key (send `{}: {form}`)",
                header_title(auth)
            );
            self.error(StatusCode::UNAUTHORIZED, &message)
        })
    }

    /// An error response in this provider's documented shape.
    ///
    /// Soundverse documents `{success: false, message}` (plus `error` on 503)
    /// and `{detail}` for an invalid prompt; SoundPiece documents `{detail}`;
    /// MusicGPT shows both `{detail}` and `{success: false, message}` and we
    /// answer `{detail}` except on 5xx. ElevenLabs documents
    /// `{detail: {status, message}}` for account-wide errors (401
    /// `invalid_api_key`, 429 `system_busy`) and, assumed, FastAPI's
    /// `{detail: "<text>"}` for the rest.
    pub fn error(self, status: StatusCode, message: &str) -> Response {
        let body = match (self, status.as_u16()) {
            (Provider::Soundverse, 422 | 401) => json!({ "detail": message }),
            (Provider::Soundverse, 503) => json!({
                "success": false,
                "message": message,
                "error": "Database connection pool exhausted",
            }),
            (Provider::Soundverse, _) => json!({ "success": false, "message": message }),
            (Provider::SoundPiece, _) => json!({ "detail": message }),
            (Provider::MusicGpt, 500..) => json!({ "success": false, "message": message }),
            (Provider::MusicGpt, _) => json!({ "detail": message }),
            (Provider::ElevenLabs, 401) => json!({
                "detail": { "status": "invalid_api_key", "message": message }
            }),
            (Provider::ElevenLabs, 429) => json!({
                "detail": { "status": "system_busy", "message": message }
            }),
            (Provider::ElevenLabs, _) => json!({ "detail": message }),
        };
        (status, Json(body)).into_response()
    }

    /// A 422 whose `detail` lists field issues in the FastAPI shape
    /// (`[{loc, msg, type}]`), as SoundPiece and MusicGPT document.
    pub fn validation_error(self, issues: &[(Vec<Value>, String)]) -> Response {
        let detail: Vec<Value> = issues
            .iter()
            .map(|(loc, msg)| json!({ "loc": loc, "msg": msg, "type": "value_error" }))
            .collect();
        match self {
            // Soundverse documents a string detail for an invalid request.
            Provider::Soundverse => self.error(
                StatusCode::UNPROCESSABLE_ENTITY,
                &issues
                    .iter()
                    .map(|(_, msg)| msg.as_str())
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            _ => (
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(json!({ "detail": detail })),
            )
                .into_response(),
        }
    }

    /// The message this provider uses for an injected status code.
    pub(crate) fn fault_message(self, status: StatusCode) -> &'static str {
        match (self, status.as_u16()) {
            (Provider::Soundverse, 429) => "Rate limits have been passed for the user.",
            (Provider::Soundverse, 503) => {
                "Service temporarily unavailable. Please try again in a moment."
            }
            // The spec's `system_busy` example.
            (Provider::ElevenLabs, 429) => {
                "The system is experiencing heavy traffic, please try again later."
            }
            (_, 429) => "Rate limit exceeded",
            (_, 503) => "Service unavailable",
            (_, 408) => "Request timeout",
            (_, 500..) => "Internal server error",
            _ => "Injected fault",
        }
    }

    /// The message of a [`Fault::Misleading`](crate::Fault::Misleading)
    /// answer: a 5xx whose text reads as if the request was not taken,
    /// although the job was created. Soundverse's 502 uses its own
    /// documented rate-limit text (documented for refusals, here on a 5xx).
    pub(crate) fn misleading_message(self, status: StatusCode) -> &'static str {
        match (self, status.as_u16()) {
            (_, 500) => "Job created, but the rate limit counter could not be updated",
            (Provider::Soundverse, 502) => "Rate limits have been passed for the user.",
            (_, 502) => "Bad gateway: the request was not processed, please try again",
            (_, 503) => "Service temporarily unavailable. Please try again in a moment.",
            (_, 504) => "Upstream service temporarily unavailable",
            _ => "Temporarily unavailable: the request was not processed, please retry",
        }
    }
}

/// The key header's name as the docs write it (`Authorization`, `xi-api-key`).
fn header_title(auth: songbind_transport::AuthScheme) -> &'static str {
    match auth {
        songbind_transport::AuthScheme::Bearer | songbind_transport::AuthScheme::Raw => {
            "Authorization"
        }
        songbind_transport::AuthScheme::Header(name) => name,
    }
}
