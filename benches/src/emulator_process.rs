//! The emulator in a child process, so that its buffers and threads do not
//! count against the client a bench measures.
//!
//! A bench binary calls [`run_child_if_asked`] first thing in `main`; then
//! [`EmulatorProcess::spawn`] starts the same binary again with
//! [`CHILD_ENV`] set, where it serves the emulator (instant pacing, a free
//! loopback port), prints its root URL and runs until its stdin closes,
//! which happens when the parent exits or drops the handle.

use std::io::{self, BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use songbind_emulator::{Emulator, Pacing};

/// Set (to anything) in the child's environment.
pub const CHILD_ENV: &str = "SONGBIND_BENCH_EMULATOR_CHILD";

/// The child's settings, read from its environment (the scale bench sets
/// them; the other benches leave them out and get the defaults).
pub mod settings {
    /// Pacing scale (`0` = instant, the default).
    pub const PACING: &str = "SONGBIND_BENCH_EMULATOR_PACING";
    /// `1`: the emulator's event log is on (answers the `log <path>` command).
    pub const EVENT_LOG: &str = "SONGBIND_BENCH_EMULATOR_EVENT_LOG";
    /// Worker threads of the child's runtime (1 by default).
    pub const WORKERS: &str = "SONGBIND_BENCH_EMULATOR_WORKERS";
    /// `0`: record no requests (the emulator's memory then is its jobs').
    pub const RECORD: &str = "SONGBIND_BENCH_EMULATOR_RECORD";
}

fn env_parse<T: std::str::FromStr>(name: &str) -> Option<T> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// In the child: serves the emulator and exits when stdin closes; in the
/// parent (no [`CHILD_ENV`]): returns at once.
///
/// Each line on stdin is a command: `log <path>` writes the event records
/// taken so far to `<path>` (one [`songbind_emulator::EventRecord::to_line`]
/// per line) and answers `ok` on stdout.
pub fn run_child_if_asked() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    let workers = env_parse::<usize>(settings::WORKERS).unwrap_or(1).max(1);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("emulator child: no runtime: {error}");
            std::process::exit(1);
        }
    };
    let mut builder = Emulator::builder()
        .pacing(Pacing::scaled(env_parse(settings::PACING).unwrap_or(0.0)))
        .event_log(env_parse::<u8>(settings::EVENT_LOG) == Some(1));
    if env_parse::<u8>(settings::RECORD) == Some(0) {
        builder = builder.max_recorded_requests(0).max_recorded_body_bytes(0);
    }
    let emulator = match runtime.block_on(builder.start()) {
        Ok(emulator) => emulator,
        Err(error) => {
            eprintln!("emulator child: cannot start: {error}");
            std::process::exit(1);
        }
    };
    println!("{}", emulator.root_url());
    // Block this thread (not the runtime's worker) until the parent goes.
    for line in io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        if let Some(path) = line.strip_prefix("log ") {
            let mut text = String::new();
            for record in emulator.take_event_log() {
                text.push_str(&record.to_line());
                text.push('\n');
            }
            let answer = match std::fs::write(path.trim(), text) {
                Ok(()) => "ok".to_owned(),
                Err(error) => format!("error {error}"),
            };
            println!("{answer}");
        }
    }
    runtime.block_on(emulator.shutdown());
    std::process::exit(0);
}

/// A running emulator child; dropping it stops the child.
#[derive(Debug)]
pub struct EmulatorProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    root_url: String,
}

impl EmulatorProcess {
    /// Starts this executable again as an emulator and waits for its URL.
    pub fn spawn() -> io::Result<Self> {
        Self::spawn_with(&[])
    }

    /// Like [`EmulatorProcess::spawn`], with [`settings`] in the child's
    /// environment.
    pub fn spawn_with(env: &[(&str, String)]) -> io::Result<Self> {
        let mut command = Command::new(std::env::current_exe()?);
        command
            .env(CHILD_ENV, "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn()?;
        let stdin = child.stdin.take();
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| io::Error::other("child has no stdout"))?;
        let mut stdout = BufReader::new(stdout);
        let mut line = String::new();
        stdout.read_line(&mut line)?;
        let root_url = line.trim().to_owned();
        if !root_url.starts_with("http://") {
            let _ = child.kill();
            return Err(io::Error::other(format!(
                "emulator child printed {root_url:?}"
            )));
        }
        Ok(Self {
            child,
            stdin,
            stdout,
            root_url,
        })
    }

    /// Has the child write its event records so far to `path` (the child
    /// must have been started with [`settings::EVENT_LOG`] `= 1`).
    pub fn write_event_log(&mut self, path: &std::path::Path) -> io::Result<()> {
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| io::Error::other("child stdin closed"))?;
        writeln!(stdin, "log {}", path.display())?;
        stdin.flush()?;
        let mut line = String::new();
        self.stdout.read_line(&mut line)?;
        match line.trim() {
            "ok" => Ok(()),
            other => Err(io::Error::other(format!("emulator child: {other}"))),
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn root_url(&self) -> &str {
        &self.root_url
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for EmulatorProcess {
    fn drop(&mut self) {
        drop(self.stdin.take()); // the child exits when its stdin closes
        if matches!(self.child.try_wait(), Ok(None)) {
            std::thread::sleep(std::time::Duration::from_millis(200));
            if matches!(self.child.try_wait(), Ok(None)) {
                let _ = self.child.kill();
            }
        }
        let _ = self.child.wait();
    }
}
