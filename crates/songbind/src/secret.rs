//! A string secret (API key, webhook secret) that never shows itself.
//!
//! Keys end up in logs through `{:?}` of a config struct, through an error
//! message that quotes a bad value, or through a panic message. [`Secret`]
//! closes those doors: its `Debug` and `Display` print `***`, it has no
//! `Serialize`, and reading the value takes a call to [`Secret::expose`],
//! which is easy to find with grep when auditing where a key goes.
//!
//! It wraps [`secrecy::SecretString`] rather than a hand-rolled type:
//! `secrecy` is well kept, and wiping memory so the compiler cannot elide it
//! (which `zeroize`, underneath, does) is easy to get wrong by hand.

use std::fmt;

use secrecy::zeroize::Zeroize;
use secrecy::{ExposeSecret, SecretString};

use crate::error::{Error, Result};

/// A string secret: an API key or a webhook signing secret.
///
/// `Debug` prints `Secret(***)` and `Display` prints `***`, so a secret can
/// sit in any struct that is logged. The value is zeroized when the secret
/// is dropped (copies made through [`Secret::expose`] are not).
///
/// ```
/// use songbind::Secret;
///
/// let key = Secret::from("spk_live_123");
/// assert_eq!(format!("{key:?}"), "Secret(***)");
/// assert_eq!(key.to_string(), "***");
/// assert_eq!(key.expose(), "spk_live_123");
/// ```
#[derive(Clone, Default)]
pub struct Secret(SecretString);

impl Secret {
    /// Wraps `value`.
    pub fn new(value: impl Into<String>) -> Self {
        let mut value: String = value.into();
        // `SecretString::from(String)` shrinks the buffer, which may move it
        // and leave the old bytes unwiped: copy instead, then wipe the
        // original (its whole capacity).
        let secret = SecretString::from(value.as_str());
        value.zeroize();
        Self(secret)
    }

    /// The secret value itself. Named so that every place a secret leaves
    /// its wrapper can be found with `grep expose`.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// Whether the secret is empty or only whitespace (an unset key).
    pub fn is_blank(&self) -> bool {
        self.expose().trim().is_empty()
    }

    /// Reads the secret from the environment variable `var`.
    ///
    /// The error names the variable and what is wrong with it (unset, empty,
    /// not Unicode), never its value.
    ///
    /// ```
    /// let error = songbind::Secret::from_env("SONGBIND_DOC_SURELY_UNSET").unwrap_err();
    /// assert!(error.to_string().contains("SONGBIND_DOC_SURELY_UNSET"));
    /// ```
    pub fn from_env(var: &str) -> Result<Self> {
        match std::env::var(var) {
            Ok(value) if value.trim().is_empty() => Err(Error::validation(
                var,
                "the environment variable is set but empty",
            )),
            Ok(value) => Ok(Self::new(value)),
            Err(std::env::VarError::NotPresent) => Err(Error::validation(
                var,
                "the environment variable is not set",
            )),
            // The rejected value is carried by `NotUnicode`: drop it unread.
            Err(std::env::VarError::NotUnicode(_)) => Err(Error::validation(
                var,
                "the environment variable is not valid Unicode",
            )),
        }
    }
}

/// The base URL and API key of `provider` from the environment, as
/// async-openai's `from_env` reads them: `<PREFIX>_API_KEY` (required) and
/// `<PREFIX>_BASE_URL` (optional; the spec's default base URL otherwise).
#[cfg_attr(not(feature = "_provider"), allow(dead_code))]
pub(crate) fn provider_env(
    provider: &songbind_transport::ProviderInfo,
) -> Result<(String, Secret)> {
    let key = Secret::from_env(&provider.api_key_var())?;
    let var = provider.base_url_var();
    let base_url = match std::env::var(&var) {
        Ok(url) if !url.trim().is_empty() => url,
        Ok(_) | Err(std::env::VarError::NotPresent) => provider.default_base_url.to_owned(),
        Err(std::env::VarError::NotUnicode(_)) => {
            return Err(Error::validation(
                var,
                "the environment variable is not valid Unicode",
            ));
        }
    };
    Ok((base_url, key))
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self::new(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self(SecretString::from(value))
    }
}

/// Our own, not `secrecy`'s `SecretBox<str>([REDACTED])`: the `***` form is
/// part of this crate's documented output.
impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_hide_the_value() {
        let secret = Secret::new("whsec_c2VjcmV0");
        let shown = format!("{secret:?} {secret} {secret:#?} {:?}", Some(&secret));
        assert!(!shown.contains("whsec_"), "{shown}");
        assert!(!shown.contains("c2VjcmV0"), "{shown}");
    }

    #[test]
    fn blank_secret_is_reported_blank() {
        assert!(Secret::from("  \t").is_blank());
        assert!(!Secret::from("k").is_blank());
    }

    #[test]
    fn missing_variable_error_names_the_variable() {
        let error = Secret::from_env("SONGBIND_TEST_SECRET_THAT_IS_NEVER_SET").unwrap_err();
        assert!(
            matches!(error, Error::Validation { ref field, .. } if field == "SONGBIND_TEST_SECRET_THAT_IS_NEVER_SET")
        );
    }
}
