//! `songbind`: generate, extend and remix songs with Soundverse, SoundPiece
//! and MusicGPT, and compose them with ElevenLabs Music, from a shell.
//!
//! ```text
//! songbind [GLOBAL] <provider> <operation> [FLAGS]
//! songbind --mock soundverse generate --prompt "A cheerful pop song about friendship"
//! ```
//!
//! Flags are declared in [`args`]; a run is [`run::run`] (ElevenLabs, whose
//! answer is the audio itself, [`elevenlabs::run`]); [`failure`] says
//! how failures are reported (one line on stderr; exit 2 when refused
//! before anything was sent, 1 after, 130 on Ctrl-C).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod args;
mod downloads;
mod elevenlabs;
mod endpoint;
mod failure;
mod output;
mod progress;
mod run;

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
