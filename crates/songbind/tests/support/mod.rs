//! Shared test support.
pub mod front;
