#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[allow(missing_docs, clippy::all, rustdoc::all)]
mod generated;

pub use generated::*;
pub use songbind_transport::{BuildError, HttpOptions};

/// Typed [httpmock](https://docs.rs/httpmock) helpers generated from the spec:
/// `server.compose_track(|when, then| ...)` with one typed `When`/`Then` pair per operation.
#[cfg(feature = "httpmock")]
#[cfg_attr(docsrs, doc(cfg(feature = "httpmock")))]
#[allow(missing_docs, clippy::all, rustdoc::all)]
#[path = "generated_httpmock.rs"]
pub mod mock;
