//! Where requests go and with which key.
//!
//! The base URL comes from `--base-url`, then `<PROVIDER>_BASE_URL`, then the
//! provider's public API; the key from `--api-key`, then `<PROVIDER>_API_KEY`.
//! With `--mock`, an emulator of the provider starts in this process on a
//! free loopback port, and no key is needed.

use std::ffi::OsString;

use songbind::{ProviderName, Secret};
use songbind_emulator::{Emulator, Pacing, Provider};

use crate::args::GlobalArgs;
use crate::failure::Failure;

/// The environment variable that sets the emulator's pacing under `--mock`.
pub const MOCK_PACING_VAR: &str = "SONGBIND_MOCK_PACING";

/// Pacing under `--mock` when [`MOCK_PACING_VAR`] is unset: a song in a few
/// seconds, slow enough to watch the stages go by.
const DEFAULT_MOCK_PACING: f64 = 0.05;

/// The key sent to the emulator under `--mock` when none is given.
const MOCK_API_KEY: &str = "songbind_mock_key";

/// Where a setting came from, to name it in error messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A command-line flag, e.g. `--base-url`.
    Flag(&'static str),
    /// An environment variable.
    Env(String),
    /// The provider's public API.
    Default,
    /// The in-process emulator.
    Mock,
}

impl Origin {
    /// How an error message names the setting.
    pub fn name(&self) -> String {
        match self {
            Origin::Flag(flag) => (*flag).to_owned(),
            Origin::Env(var) => var.clone(),
            Origin::Default => "the default base URL".to_owned(),
            Origin::Mock => "--mock".to_owned(),
        }
    }
}

/// The resolved target of the run.
#[derive(Debug)]
pub struct Endpoint {
    /// The provider's base URL (possibly with a path prefix).
    pub base_url: String,
    /// Where the base URL came from.
    pub base_url_origin: Origin,
    /// The API key.
    pub api_key: Secret,
    /// Where the key came from.
    pub api_key_origin: Origin,
    /// The in-process emulator under `--mock`; it serves for as long as
    /// this value lives.
    pub emulator: Option<Emulator>,
}

/// The provider's descriptor, generated from its spec: environment
/// variables, public base URL.
pub fn info(provider: ProviderName) -> songbind_transport::ProviderInfo {
    match provider {
        ProviderName::Soundverse => songbind_soundverse::PROVIDER,
        ProviderName::SoundPiece => songbind_soundpiece::PROVIDER,
        ProviderName::MusicGpt => songbind_musicgpt::PROVIDER,
        ProviderName::ElevenLabs => songbind_elevenlabs::PROVIDER,
        ProviderName::Beatoven => songbind_beatoven::PROVIDER,
    }
}

/// The emulator's name for the provider (they share the spec's slug).
fn emulated(provider: ProviderName) -> Result<Provider, Failure> {
    Provider::from_name(provider.slug()).ok_or_else(|| {
        Failure::Usage(format!(
            "--mock: the emulator does not serve {provider} yet"
        ))
    })
}

/// Resolves the endpoint from the flags and the process environment,
/// starting the emulator under `--mock`.
pub async fn resolve(provider: ProviderName, global: &GlobalArgs) -> Result<Endpoint, Failure> {
    resolve_with(provider, global, |var| std::env::var_os(var)).await
}

/// [`resolve`] with the environment read through `env`.
async fn resolve_with(
    provider: ProviderName,
    global: &GlobalArgs,
    env: impl Fn(&str) -> Option<OsString>,
) -> Result<Endpoint, Failure> {
    let info = info(provider);
    if global.mock {
        let pacing = mock_pacing(env(MOCK_PACING_VAR))?;
        let emulator = Emulator::builder()
            .pacing(pacing)
            .start()
            .await
            .map_err(|e| Failure::Runtime(format!("cannot start the --mock emulator: {e}")))?;
        let (api_key, api_key_origin) = match &global.api_key {
            Some(key) => (key.clone(), Origin::Flag("--api-key")),
            None => (Secret::from(MOCK_API_KEY), Origin::Mock),
        };
        return Ok(Endpoint {
            base_url: emulator.base_url(emulated(provider)?),
            base_url_origin: Origin::Mock,
            api_key,
            api_key_origin,
            emulator: Some(emulator),
        });
    }

    let url_var = info.base_url_var();
    let (base_url, base_url_origin) = match (&global.base_url, env(&url_var)) {
        (Some(url), _) => (url.clone(), Origin::Flag("--base-url")),
        (None, Some(value)) if !value.is_empty() => {
            let url = value
                .into_string()
                .map_err(|_| Failure::invalid(&url_var, "is not valid Unicode"))?;
            (url, Origin::Env(url_var))
        }
        (None, _) => (info.default_base_url.to_owned(), Origin::Default),
    };

    let key_var = info.api_key_var();
    let (api_key, api_key_origin) = match (&global.api_key, env(&key_var)) {
        (Some(key), _) => (key.clone(), Origin::Flag("--api-key")),
        (None, Some(value)) => {
            let key = value
                .into_string()
                .map_err(|_| Failure::invalid(&key_var, "is not valid Unicode"))?;
            if key.trim().is_empty() {
                return Err(Failure::invalid(&key_var, "is set but empty"));
            }
            (Secret::from(key), Origin::Env(key_var))
        }
        (None, None) => {
            return Err(Failure::Usage(format!(
                "no {provider} API key: set {key_var} or pass --api-key \
                 (or add --mock to try it offline against the built-in emulator)"
            )));
        }
    };
    Ok(Endpoint {
        base_url,
        base_url_origin,
        api_key,
        api_key_origin,
        emulator: None,
    })
}

/// Reads [`MOCK_PACING_VAR`]: `instant`, `realtime` or a factor >= 0.
fn mock_pacing(value: Option<OsString>) -> Result<Pacing, Failure> {
    let Some(value) = value else {
        return Ok(Pacing::scaled(DEFAULT_MOCK_PACING));
    };
    let refuse = || {
        Failure::invalid(
            MOCK_PACING_VAR,
            "must be `instant`, `realtime` or a factor such as 0.1",
        )
    };
    let text = value.into_string().map_err(|_| refuse())?;
    match text.trim() {
        "" => Ok(Pacing::scaled(DEFAULT_MOCK_PACING)),
        "instant" => Ok(Pacing::instant()),
        "realtime" => Ok(Pacing::realtime()),
        factor => factor
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite() && *f >= 0.0)
            .map(Pacing::scaled)
            .ok_or_else(refuse),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn global(args: &[&str]) -> GlobalArgs {
        let mut argv = vec!["songbind"];
        argv.extend_from_slice(args);
        argv.extend_from_slice(&["soundverse", "generate", "--prompt", "p"]);
        crate::args::Cli::try_parse_from(argv).unwrap().global
    }

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<OsString> + 'a {
        move |name| {
            vars.iter()
                .find(|(var, _)| *var == name)
                .map(|(_, value)| OsString::from(value))
        }
    }

    #[tokio::test]
    async fn flags_win_over_the_environment() {
        let vars = [
            ("SOUNDVERSE_BASE_URL", "http://env.example/prefix"),
            ("SOUNDVERSE_API_KEY", "env_key"),
        ];
        let endpoint = resolve_with(
            ProviderName::Soundverse,
            &global(&["--base-url", "http://flag.example", "--api-key", "flag_key"]),
            env(&vars),
        )
        .await
        .unwrap();
        assert_eq!(endpoint.base_url, "http://flag.example");
        assert_eq!(endpoint.api_key.expose(), "flag_key");

        let endpoint = resolve_with(ProviderName::Soundverse, &global(&[]), env(&vars))
            .await
            .unwrap();
        assert_eq!(endpoint.base_url, "http://env.example/prefix");
        assert_eq!(
            endpoint.base_url_origin,
            Origin::Env("SOUNDVERSE_BASE_URL".into())
        );
        assert_eq!(endpoint.api_key.expose(), "env_key");
    }

    #[tokio::test]
    async fn without_a_key_the_error_names_the_variable_and_the_flag() {
        let vars = [("SOUNDVERSE_API_KEY", "wrong provider")];
        let failure = resolve_with(ProviderName::MusicGpt, &global(&[]), env(&vars))
            .await
            .unwrap_err();
        let text = failure.to_string();
        assert!(
            text.contains("MUSICGPT_API_KEY") && text.contains("--api-key"),
            "{text}"
        );
        assert!(matches!(failure, Failure::Usage(_)));
    }

    #[tokio::test]
    async fn the_public_api_is_the_default_base_url() {
        let vars = [("SOUNDPIECE_API_KEY", "k")];
        let endpoint = resolve_with(ProviderName::SoundPiece, &global(&[]), env(&vars))
            .await
            .unwrap();
        assert_eq!(endpoint.base_url, songbind_soundpiece::DEFAULT_BASE_URL);
    }

    #[tokio::test]
    async fn mock_needs_no_key_and_serves_locally() {
        let endpoint = resolve_with(ProviderName::Soundverse, &global(&["--mock"]), env(&[]))
            .await
            .unwrap();
        assert!(endpoint.base_url.starts_with("http://127.0.0.1:"));
        assert!(endpoint.base_url.ends_with("/soundverse"));
        assert!(endpoint.emulator.is_some());
    }

    #[test]
    fn mock_pacing_reads_names_and_factors() {
        let read = |text: &str| mock_pacing(Some(OsString::from(text)));
        assert_eq!(read("instant").unwrap(), Pacing::instant());
        assert_eq!(read("realtime").unwrap(), Pacing::realtime());
        assert_eq!(read("0.5").unwrap(), Pacing::scaled(0.5));
        assert_eq!(
            mock_pacing(None).unwrap(),
            Pacing::scaled(DEFAULT_MOCK_PACING)
        );
        for bad in ["fast", "-1", "inf"] {
            assert!(read(bad).unwrap_err().to_string().contains(MOCK_PACING_VAR));
        }
    }
}
