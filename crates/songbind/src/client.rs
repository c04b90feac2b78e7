//! The constructors every provider client shares, written once.
//!
//! A provider client is its generated client plus [`Calls`](crate::retry::Calls)
//! (retry policy and key scrubbing). `provider_client!` gives it `new`,
//! `from_env`, `with_options`, `retry_policy` and `generated`, reading the
//! environment variables and the default base URL from the generated
//! `PROVIDER` descriptor.

/// Implements the shared constructors for `$client`, whose generated crate
/// is `$api` and whose name is `$name`; `$field: $init` initialise any other
/// field.
macro_rules! provider_client {
    ($client:ident, $api:ident, $name:expr $(, $field:ident: $init:expr)* $(,)?) => {
        impl $client {
            /// A client for `base_url` (e.g. [`DEFAULT_BASE_URL`]) that sends
            /// `api_key` in the provider's auth form, with default timeouts.
            pub fn new(base_url: &str, api_key: &$crate::Secret) -> $crate::Result<Self> {
                Self::with_options(base_url, api_key, &$crate::HttpOptions::default())
            }

            /// A client from the environment: the key in `<PREFIX>_API_KEY`,
            /// the base URL in `<PREFIX>_BASE_URL` when set, else
            /// [`DEFAULT_BASE_URL`] (the prefix is the provider's, e.g.
            /// `SOUNDPIECE`). The error names the variable, never its value.
            pub fn from_env() -> $crate::Result<Self> {
                let (base_url, key) = $crate::secret::provider_env(&$api::PROVIDER)?;
                Self::new(&base_url, &key)
            }

            /// Like `new`, with your own timeouts and user agent.
            pub fn with_options(
                base_url: &str,
                api_key: &$crate::Secret,
                options: &$crate::HttpOptions,
            ) -> $crate::Result<Self> {
                Ok(Self {
                    client: $api::Client::with_options(base_url, api_key.expose(), options)?,
                    calls: $crate::retry::Calls::new($name, api_key),
                    $($field: $init,)*
                })
            }

            /// A handle whose calls use `options` (timeout, extra headers,
            /// retry policy, idempotency key), as do the polls of the jobs
            /// it creates. `self` is unchanged.
            pub fn with(&self, options: &$crate::RequestOptions) -> Self {
                let mut handle = self.clone();
                handle.calls.options = options.clone();
                handle
            }

            /// Replaces the retry policy.
            pub fn retry_policy(mut self, policy: $crate::RetryPolicy) -> Self {
                self.calls.policy = policy;
                self
            }

            /// The generated client underneath, for calls this crate does
            /// not wrap.
            pub fn generated(&self) -> &$api::Client {
                &self.client
            }
        }
    };
}

pub(crate) use provider_client;
