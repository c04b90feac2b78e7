//! What stalled uploads cost the emulator: starts it in-process, opens 500
//! connections that each send the headers of a 1 MiB Soundverse create
//! (`Content-Length: 1048576`, a valid key) and one byte of the body, then
//! stop; prints the resident set size (`VmRSS`) from `/proc/self/status`
//! before, while they stall, and once the emulator has answered or closed
//! them (or 5 s after the body timeout, at most 15 s), for 3 rounds
//! (Linux only).
//!
//! ```text
//! cargo run -p songbind-emulator --example stalled_bodies [-- CONNECTIONS ROUNDS BODY_TIMEOUT_SECS]
//! ```
//!
//! Freed memory stays with the allocator, so `VmRSS` does not fall when the
//! connections close; what shows the bound is that later rounds reuse it
//! instead of growing it. A body timeout longer than the run (say 100000)
//! behaves as the emulator did before it had one: every round adds to what
//! the previous ones still hold.
//!
//! The clients live in the same process, but a client socket holds no
//! user-space memory beyond its `TcpStream`: the growth is the emulator's.

use std::error::Error;
use std::time::{Duration, Instant};

use songbind_emulator::{Emulator, Pacing};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// `VmRSS` of this process, in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn report(label: &str, baseline: u64) {
    let rss = rss_kib();
    println!(
        "{label:<52} VmRSS {:>8.1} MiB ({:+.1} MiB)",
        rss as f64 / 1024.0,
        (rss as f64 - baseline as f64) / 1024.0
    );
}

/// Reads until the server closes the connection; answers the status line
/// it sent first, if any.
async fn first_line(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    let mut buffer = [0u8; 1024];
    loop {
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(n) => received.extend_from_slice(&buffer[..n]),
        }
    }
    let text = String::from_utf8_lossy(&received);
    text.lines()
        .next()
        .unwrap_or("(closed without an answer)")
        .to_owned()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let connections: usize = args.next().map_or(Ok(500), |a| a.parse())?;
    let rounds: usize = args.next().map_or(Ok(3), |a| a.parse())?;
    let body_timeout = Duration::from_secs(args.next().map_or(Ok(5), |a| a.parse())?);
    let wait = body_timeout.min(Duration::from_secs(10)) + Duration::from_secs(5);
    let emulator = Emulator::builder()
        .pacing(Pacing::instant())
        .body_read_timeout(body_timeout)
        .start()
        .await?;
    // One ordinary request first, so that the baseline includes what the
    // first request allocates once.
    let mut warm = TcpStream::connect(emulator.addr()).await?;
    warm.write_all(b"GET /files/x.wav HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await?;
    first_line(&mut warm).await;
    let baseline = rss_kib();
    report("before", baseline);

    let head = "POST /soundverse/v6/generate/song HTTP/1.1\r\nHost: x\r\n\
                Authorization: Bearer sk_stall\r\nContent-Type: application/json\r\n\
                Content-Length: 1048576\r\n\r\n{";
    let mut held = Vec::new();
    for round in 1..=rounds {
        let mut clients = Vec::with_capacity(connections);
        for _ in 0..connections {
            let mut stream = TcpStream::connect(emulator.addr()).await?;
            stream.write_all(head.as_bytes()).await?;
            clients.push(stream);
        }
        // Nothing tells when the emulator has read them all; a second is
        // plenty on loopback.
        tokio::time::sleep(Duration::from_secs(1)).await;
        report(
            &format!("round {round}: {connections} connections stalled mid-body"),
            baseline,
        );
        let started = Instant::now();
        let answers = futures::future::join_all(clients.iter_mut().map(|stream| async {
            tokio::time::timeout(wait, first_line(stream))
                .await
                .unwrap_or_else(|_| "(still open)".to_owned())
        }))
        .await;
        let mut counts = std::collections::BTreeMap::new();
        for answer in answers {
            *counts.entry(answer).or_insert(0usize) += 1;
        }
        report(
            &format!(
                "round {round}: {:.1} s later",
                started.elapsed().as_secs_f64()
            ),
            baseline,
        );
        println!("  answers: {counts:?}");
        // Still-open connections stay open into the next round.
        held.push(clients);
    }
    drop(held);
    emulator.shutdown().await;
    Ok(())
}
