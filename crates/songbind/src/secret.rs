//! A string secret (API key, webhook secret) that never shows itself.
//!
//! Keys end up in logs through `{:?}` of a config struct, through an error
//! message that quotes a bad value, or through a panic message. [`Secret`]
//! closes those doors: its `Debug` and `Display` print `***`, it has no
//! `Serialize`, and reading the value takes a call to [`Secret::expose`],
//! which is easy to find with grep when auditing where a key goes.

use std::fmt;

use crate::error::{Error, Result};

/// A string secret: an API key or a webhook signing secret.
///
/// `Debug` prints `Secret(***)` and `Display` prints `***`, so a secret can
/// sit in any struct that is logged. The value is wiped (best effort) when the
/// secret is dropped.
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
pub struct Secret(String);

impl Secret {
    /// Wraps `value`.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret value itself. Named so that every place a secret leaves
    /// its wrapper can be found with `grep expose`.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the secret is empty or only whitespace (an unset key).
    pub fn is_blank(&self) -> bool {
        self.0.trim().is_empty()
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
            Ok(value) => Ok(Self(value)),
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

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

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

impl Drop for Secret {
    /// Overwrites the bytes before the allocation is freed, so the value does
    /// not linger in freed memory. Best effort without `unsafe` or an extra
    /// crate: copies made by the caller (through `expose`) are not reached.
    fn drop(&mut self) {
        let mut bytes = std::mem::take(&mut self.0).into_bytes();
        bytes.iter_mut().for_each(|byte| *byte = 0);
        std::hint::black_box(&bytes);
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
