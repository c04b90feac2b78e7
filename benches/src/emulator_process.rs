//! The emulator in a child process, so that its buffers and threads do not
//! count against the client a bench measures.
//!
//! A bench binary calls [`run_child_if_asked`] first thing in `main`; then
//! [`EmulatorProcess::spawn`] starts the same binary again with
//! [`CHILD_ENV`] set, where it serves the emulator (instant pacing, a free
//! loopback port), prints its root URL and runs until its stdin closes,
//! which happens when the parent exits or drops the handle.

use std::io::{self, BufRead, BufReader, Read};
use std::process::{Child, ChildStdin, Command, Stdio};

use songbind_emulator::{Emulator, Pacing};

/// Set (to anything) in the child's environment.
pub const CHILD_ENV: &str = "SONGBIND_BENCH_EMULATOR_CHILD";

/// In the child: serves the emulator and exits when stdin closes; in the
/// parent (no [`CHILD_ENV`]): returns at once.
pub fn run_child_if_asked() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("emulator child: no runtime: {error}");
            std::process::exit(1);
        }
    };
    let emulator = match runtime.block_on(Emulator::builder().pacing(Pacing::instant()).start()) {
        Ok(emulator) => emulator,
        Err(error) => {
            eprintln!("emulator child: cannot start: {error}");
            std::process::exit(1);
        }
    };
    println!("{}", emulator.root_url());
    // Block this thread (not the runtime's worker) until the parent goes.
    let _ = io::stdin().read_to_end(&mut Vec::new());
    runtime.block_on(emulator.shutdown());
    std::process::exit(0);
}

/// A running emulator child; dropping it stops the child.
#[derive(Debug)]
pub struct EmulatorProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    root_url: String,
}

impl EmulatorProcess {
    /// Starts this executable again as an emulator and waits for its URL.
    pub fn spawn() -> io::Result<Self> {
        let mut child = Command::new(std::env::current_exe()?)
            .env(CHILD_ENV, "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let stdin = child.stdin.take();
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| io::Error::other("child has no stdout"))?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
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
            root_url,
        })
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
