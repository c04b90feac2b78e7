//! Peak memory of streamed transfers: how much the client's peak RSS grows
//! while `songbind::musicgpt::MusicGpt::submit_remix` uploads a 10 MiB file
//! (`AudioInput::File`, multipart `POST /Remix`) and while
//! `songbind::Downloader` downloads a 50 MiB file, both against the
//! emulator running in a child process (this binary, started again), so
//! that the server's buffers are not counted.
//!
//! Growth is `VmHWM` after the operation minus `VmRSS` right after the peak
//! was reset (`echo 5 > /proc/self/clear_refs`): the floor is the process's
//! own baseline, measured in the same run just before each operation. A
//! warm-up upload and download come first, so that lazy allocations
//! (connection pools, runtime threads, code pages) are already made.
//!
//! `cargo bench -p songbind-benches --bench memory`. Targets: upload growth
//! at most 0.2x the file size; download growth under 2 MiB.

use std::io::Write;
use std::path::Path;

use songbind::musicgpt::{AudioInput, MusicGpt, RemixRequest};
use songbind::{Downloader, Secret};
use songbind_benches::emulator_process::{self, EmulatorProcess};
use songbind_benches::rss;
use songbind_benches::timing::{self, Mode};

const UPLOAD_BYTES: u64 = 10 * 1024 * 1024;
const DOWNLOAD_BYTES: u64 = 50 * 1024 * 1024;
const KIB: u64 = 1024;

/// Writes `len` bytes of noise (an xorshift stream) 64 KiB at a time.
fn write_file(path: &Path, len: u64) {
    let mut file = std::fs::File::create(path).expect("create upload file");
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut piece = vec![0u8; 64 * 1024];
    let mut left = len;
    while left > 0 {
        for byte in piece.iter_mut() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            *byte = state as u8;
        }
        let take = left.min(piece.len() as u64) as usize;
        file.write_all(&piece[..take]).expect("write upload file");
        left -= take as u64;
    }
}

struct Growth {
    baseline_kib: u64,
    peak_kib: u64,
}

impl Growth {
    fn kib(&self) -> u64 {
        self.peak_kib.saturating_sub(self.baseline_kib)
    }
}

fn measure(operation: impl FnOnce()) -> Growth {
    let (baseline_kib, peak_kib, ()) = rss::peak_during(operation).expect("/proc/self readable");
    Growth {
        baseline_kib,
        peak_kib,
    }
}

fn summarise(what: &str, file_bytes: u64, runs: &[Growth]) -> (u64, f64) {
    let growths: Vec<f64> = runs.iter().map(|g| g.kib() as f64).collect();
    let worst = runs.iter().map(Growth::kib).max().unwrap_or(0);
    let median = timing::median(&growths);
    let file_kib = file_bytes / KIB;
    println!(
        "{what}: growth per run (KiB) {:?}; baseline RSS {} KiB, peak {} KiB (worst run)",
        runs.iter().map(Growth::kib).collect::<Vec<_>>(),
        runs.iter()
            .max_by_key(|g| g.kib())
            .map_or(0, |g| g.baseline_kib),
        runs.iter()
            .max_by_key(|g| g.kib())
            .map_or(0, |g| g.peak_kib),
    );
    println!(
        "    median {median:.0} KiB, worst {worst} KiB, file {file_kib} KiB: worst/file = {:.4}x",
        worst as f64 / file_kib as f64
    );
    (worst, worst as f64 / file_kib as f64)
}

fn main() {
    emulator_process::run_child_if_asked();
    let mode = Mode::from_args();
    let emulator = EmulatorProcess::spawn().expect("emulator child starts");
    let root = emulator.root_url().to_owned();
    println!(
        "emulator child pid {} at {root}; {}",
        emulator.pid(),
        match mode {
            Mode::Measure => "measure",
            Mode::Smoke => "smoke run (cargo test --benches): not a measurement",
        }
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let big = dir.path().join("upload.wav");
    let small = dir.path().join("warmup.wav");
    write_file(&big, UPLOAD_BYTES);
    write_file(&small, 256 * KIB);

    let musicgpt =
        MusicGpt::new(&format!("{root}/musicgpt"), &Secret::from("bench_key")).expect("client");
    let downloader = Downloader::new();
    let upload = |path: &Path| {
        let request = RemixRequest::new(AudioInput::File(path.to_owned()), "an upbeat remix");
        runtime
            .block_on(musicgpt.submit_remix(&request))
            .expect("upload accepted");
    };
    let target = dir.path().join("download.wav");
    let download = |bytes: u64| {
        let url = format!("{root}/files/sized-{bytes}.wav");
        let written = runtime
            .block_on(downloader.download(&url, &target, |_, _| {}))
            .expect("download");
        assert_eq!(written, bytes);
        std::fs::remove_file(&target).expect("remove download");
    };

    for _ in 0..2 {
        upload(&small);
        download(KIB * KIB);
    }
    let runs = mode.rounds(7, 1);

    // Calibration: the method must see a buffer the client really touches.
    let calibration = measure(|| {
        let buffer = vec![1u8; 4 * 1024 * 1024];
        std::hint::black_box(&buffer);
    });
    println!(
        "calibration: touching a 4096 KiB buffer shows {} KiB of growth",
        calibration.kib()
    );

    let idle: Vec<Growth> = (0..runs).map(|_| measure(|| download(1024))).collect();
    summarise("one 1 KiB download (the per-call floor)", 1024, &idle);

    let uploads: Vec<Growth> = (0..runs).map(|_| measure(|| upload(&big))).collect();
    let (up_kib, up_ratio) = summarise(
        "upload 10 MiB (MusicGpt::submit_remix)",
        UPLOAD_BYTES,
        &uploads,
    );

    let downloads: Vec<Growth> = (0..runs)
        .map(|_| measure(|| download(DOWNLOAD_BYTES)))
        .collect();
    let (down_kib, down_ratio) = summarise(
        "download 50 MiB (Downloader::download)",
        DOWNLOAD_BYTES,
        &downloads,
    );

    let verdict = |met: bool| timing::verdict(mode, met);
    println!(
        "memory upload peak RSS growth / file size: {up_ratio:.4}x ({up_kib} KiB of {} KiB) (target <= 0.2x): {}",
        UPLOAD_BYTES / KIB,
        verdict(up_ratio <= 0.2)
    );
    println!(
        "memory download peak RSS growth: {down_kib} KiB = {down_ratio:.4}x of {} KiB (target < 2048 KiB): {}",
        DOWNLOAD_BYTES / KIB,
        verdict(down_kib < 2048)
    );
    drop(emulator);
}
