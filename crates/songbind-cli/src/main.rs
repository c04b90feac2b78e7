//! `songbind`: generate, extend and remix songs with Soundverse, SoundPiece
//! and MusicGPT, and compose them with ElevenLabs Music, from a shell.
//!
//! ```text
//! songbind [GLOBAL] <provider> <operation> [FLAGS]
//! songbind --mock soundverse generate --prompt "A cheerful pop song about friendship"
//! ```
//!
//! Flags are declared in [`args`]; a run is [`run::run`] (ElevenLabs, whose
//! answer is the audio itself, [`elevenlabs::run`]; `webhooks listen` and
//! `verify`, [`webhooks::run`]); [`failure`] says
//! how failures are reported (one line on stderr; exit 2 when refused
//! before anything was sent, 1 after, 130 on Ctrl-C).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod args;
mod delivery;
mod downloads;
mod elevenlabs;
mod endpoint;
mod failure;
mod output;
mod progress;
mod run;
mod webhooks;

use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;

/// Parses the command line, runs it, and turns the outcome into an exit status.
fn main() -> ExitCode {
    let cli = match args::Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) if error.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = error.print();
            return ExitCode::from(2);
        }
        Err(error) if error.use_stderr() => {
            eprintln!("{}", failure::clap_one_line(&error));
            return ExitCode::from(2);
        }
        // --help and --version.
        Err(info) => {
            let _ = info.print();
            return ExitCode::SUCCESS;
        }
    };
    if cli.global.verbose {
        verbose();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("{failure}");
            failure.exit_code()
        }
    }
}

/// `-v`: the `songbind` crates' tracing output on stderr, one line per event
/// and per closed span (`songbind.call` with its provider, operation,
/// attempt, HTTP status, elapsed time and request id). The library never
/// records a key. Plain text: this build writes no ANSI colours, terminal or
/// not.
fn verbose() {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    use tracing_subscriber::fmt::format::FmtSpan;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;

    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_span_events(FmtSpan::CLOSE);
    // Only the songbind crates: not the HTTP stack's own traces.
    let only_songbind = Targets::new().with_target("songbind", LevelFilter::TRACE);
    let _ = tracing_subscriber::registry()
        .with(layer)
        .with(only_songbind)
        .try_init();
}
