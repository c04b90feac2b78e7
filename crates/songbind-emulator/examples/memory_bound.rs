//! How much memory a flood of large requests costs the emulator: starts it
//! in-process, sends 600 unauthenticated 1 MiB POSTs, then 600 authenticated
//! ones, and prints the resident set size (`VmRSS`) and its peak (`VmHWM`)
//! from `/proc/self/status` before and after each run (Linux only).
//!
//! ```text
//! cargo run --release -p songbind-emulator --example memory_bound
//! ```
//!
//! The request log keeps only requests that passed the auth check, at most
//! `DEFAULT_MAX_RECORDED_REQUESTS` of them and at most
//! `DEFAULT_MAX_RECORDED_BODY_BYTES` of each body, so the first run should
//! leave the resident size where it was and the second grow it by at most
//! about 600 x 64 KiB.

use std::error::Error;

use bytes::Bytes;
use songbind_emulator::{Emulator, Pacing, Provider};

const REQUESTS: usize = 600;
const BODY: usize = 1024 * 1024;

/// `VmRSS` and `VmHWM` of this process, in KiB.
fn memory() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn report(label: &str, emulator: &Emulator) {
    let (rss, hwm) = memory();
    let kept = emulator.received();
    let kept_bytes: usize = kept.iter().map(|r| r.body.len()).sum();
    println!(
        "{label:<44} VmRSS {:>7.1} MiB  VmHWM {:>7.1} MiB  requests kept {:>4}  body bytes kept {:>9}",
        rss as f64 / 1024.0,
        hwm as f64 / 1024.0,
        kept.len(),
        kept_bytes,
    );
}

/// POSTs `body` to Soundverse's generate route `REQUESTS` times, with
/// `auth` as the Authorization header if given; answers how many answers
/// had each status.
async fn flood(
    client: &reqwest::Client,
    url: &str,
    auth: Option<&str>,
    body: &Bytes,
) -> Result<Vec<(u16, usize)>, Box<dyn Error>> {
    let mut statuses = std::collections::BTreeMap::new();
    for _ in 0..REQUESTS {
        let mut request = client
            .post(url)
            .header("content-type", "application/json")
            .body(body.clone());
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        let response = request.send().await?;
        *statuses.entry(response.status().as_u16()).or_insert(0) += 1;
        response.bytes().await?;
    }
    Ok(statuses.into_iter().collect())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let emulator = Emulator::builder()
        .pacing(Pacing::instant())
        .start()
        .await?;
    let client = reqwest::Client::builder().no_proxy().build()?;
    let url = format!(
        "{}/v6/generate/song",
        emulator.base_url(Provider::Soundverse)
    );
    let body = Bytes::from(vec![b'x'; BODY]);

    report("before", &emulator);
    let statuses = flood(&client, &url, None, &body).await?;
    report(
        &format!("after {REQUESTS} unauthenticated 1 MiB POSTs"),
        &emulator,
    );
    println!("  statuses: {statuses:?}");
    let statuses = flood(&client, &url, Some("Bearer sk_memory"), &body).await?;
    report(
        &format!("after {REQUESTS} authenticated 1 MiB POSTs"),
        &emulator,
    );
    println!("  statuses: {statuses:?}");
    emulator.shutdown().await;
    Ok(())
}
