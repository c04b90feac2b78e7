//! Shared test support.
#![allow(dead_code)] // each test binary uses part of the support

pub mod front;
