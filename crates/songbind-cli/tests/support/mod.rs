//! What the CLI's test files share: reading one HTTP/1.1 request off a raw
//! socket, for the scripted loopback servers that answer (or misbehave)
//! exactly as a test says. The hostile-peer kit's own reader, so that every
//! surface's tests read requests alike.

// Each test file is its own crate and uses part of this module.
#![allow(unused_imports)]

pub use songbind_hostile::{Received, read_request};
