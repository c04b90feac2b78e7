//! The emulator's resource bounds, over loopback: what the request log keeps
//! (nothing from unauthenticated clients, at most the configured number of
//! requests and body bytes from the others), how long a connection may take
//! to send its headers, and that failing accepts do not spin a core.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use axum::http::StatusCode;
use bytes::Bytes;
use reqwest::multipart::{Form, Part};
use songbind_emulator::{
    DEFAULT_BODY_READ_TIMEOUT, DEFAULT_HEADER_READ_TIMEOUT, DEFAULT_MAX_RECORDED_BODY_BYTES,
    DEFAULT_MAX_RECORDED_REQUESTS, Emulator, Pacing, Provider, RECORDED_BODY_LIMIT, RecordStats,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(30);

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("a reqwest client")
}

/// A body of `len` bytes whose content depends on `seed`, so that a kept
/// prefix can be told from another request's.
fn large_body(len: usize, seed: usize) -> Bytes {
    (0..len)
        .map(|i| b'a' + ((i + seed) % 26) as u8)
        .collect::<Vec<u8>>()
        .into()
}

/// The create request of `provider`, with `auth` in its key header
/// (`Authorization`, or ElevenLabs' `xi-api-key`; none when `None`) and
/// `body` sent as JSON.
fn create(
    emulator: &Emulator,
    provider: Provider,
    auth: Option<&str>,
    body: Bytes,
) -> reqwest::RequestBuilder {
    let base = emulator.base_url(provider);
    let request = match provider {
        Provider::Soundverse => http().post(format!("{base}/v6/generate/song")),
        Provider::SoundPiece => http().put(format!("{base}/v1/create.remix_song")),
        Provider::MusicGpt => http().post(format!("{base}/Remix")),
        Provider::ElevenLabs => http().post(format!("{base}/v1/music")),
    };
    let request = request
        .header("content-type", "application/json")
        .body(body);
    match auth {
        Some(auth) => request.header(provider.info().auth.header_name(), auth),
        None => request,
    }
}

/// Checks the log against its caps: at most `max_requests` kept, no kept
/// body longer than `max_body`, and the byte count adding up.
fn assert_within(emulator: &Emulator, max_requests: usize, max_body: usize) -> RecordStats {
    let stats = emulator.record_stats();
    let kept = emulator.received();
    assert!(stats.kept <= max_requests, "{stats:?}");
    assert_eq!(kept.len(), stats.kept, "{stats:?}");
    assert!(stats.kept_bytes <= max_requests * max_body, "{stats:?}");
    for request in &kept {
        assert!(request.body.len() <= max_body, "{}", request.body.len());
    }
    assert_eq!(
        kept.iter().map(|r| r.body.len()).sum::<usize>(),
        stats.kept_bytes,
        "{stats:?}"
    );
    assert_eq!(stats.kept + stats.dropped, stats.recorded, "{stats:?}");
    stats
}

#[test]
fn the_default_caps_are_a_thousand_requests_and_64_kib_per_body() {
    assert_eq!(DEFAULT_MAX_RECORDED_REQUESTS, 1000);
    assert_eq!(DEFAULT_MAX_RECORDED_BODY_BYTES, 64 * 1024);
}

/// Regression (issue 9, item 13): every request was recorded before the auth
/// check, so anyone could grow the emulator by 1 MiB per request.
#[tokio::test]
async fn unauthenticated_requests_are_never_recorded_even_with_large_bodies() -> Result<()> {
    let emulator = Emulator::start_for_tests().await?;
    const PER_PROVIDER: usize = 30;
    let mut refused = 0;
    for provider in Provider::ALL {
        // No key at all, and a key in the wrong form for the provider.
        let wrong = match provider {
            Provider::MusicGpt => "Bearer mgpt_key",
            Provider::ElevenLabs => "Bearer xi_key",
            _ => "sk_key_without_bearer",
        };
        for i in 0..PER_PROVIDER {
            let auth = (i % 2 == 1).then_some(wrong);
            let response = create(
                &emulator,
                provider,
                auth,
                large_body(RECORDED_BODY_LIMIT, i),
            )
            .send()
            .await?;
            ensure!(
                response.status() == StatusCode::UNAUTHORIZED,
                "{provider:?} {auth:?}: {}",
                response.status()
            );
            refused += 1;
        }
        // A multipart upload without a key too.
        let form = Form::new().text("prompt", "x".repeat(100_000)).part(
            "audio_file",
            Part::bytes(vec![7u8; 200_000]).file_name("a.mp3"),
        );
        let response = http()
            .post(format!("{}/Remix", emulator.base_url(Provider::MusicGpt)))
            .multipart(form)
            .send()
            .await?;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        refused += 1;
    }
    assert_eq!(refused, Provider::ALL.len() * (PER_PROVIDER + 1));
    assert!(emulator.received().is_empty());
    assert_eq!(emulator.received_count(), 0);
    assert_eq!(emulator.record_stats(), RecordStats::default());

    // An authenticated request is recorded, whole.
    let body = Bytes::from_static(br#"{"prompt": "rock"}"#);
    create(
        &emulator,
        Provider::Soundverse,
        Some("Bearer sk_test"),
        body.clone(),
    )
    .send()
    .await?;
    let received = emulator.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].body, body);
    Ok(())
}

/// Regression (issue 9, item 13): the log kept every request and up to
/// 1 MiB of each body, forever.
#[tokio::test]
async fn the_request_log_keeps_at_most_the_configured_requests_and_body_bytes() -> Result<()> {
    const MAX_REQUESTS: usize = 5;
    const MAX_BODY: usize = 4096;
    const LARGE: usize = 40;
    let emulator = Emulator::builder()
        .pacing(Pacing::instant())
        .max_recorded_requests(MAX_REQUESTS)
        .max_recorded_body_bytes(MAX_BODY)
        .start()
        .await?;
    let mut sent = 0usize;
    let mut sent_bytes = 0u64;
    for i in 0..LARGE {
        let provider = Provider::ALL[i % 3];
        let auth = match provider {
            Provider::MusicGpt => "mgpt_test",
            _ => "Bearer sk_test",
        };
        let body = large_body(RECORDED_BODY_LIMIT, i);
        let response = create(&emulator, provider, Some(auth), body.clone())
            .header("x-n", i.to_string())
            .send()
            .await?;
        ensure!(
            response.status() != StatusCode::UNAUTHORIZED,
            "{provider:?} refused the key"
        );
        sent += 1;
        sent_bytes += body.len() as u64;
        // Never over the caps, after any request.
        let stats = assert_within(&emulator, MAX_REQUESTS, MAX_BODY);
        assert_eq!(stats.recorded, sent);
        // The newest request is kept, cut to its first MAX_BODY bytes.
        let newest = emulator.received().pop().context("nothing kept")?;
        assert_eq!(newest.header("x-n"), Some(i.to_string().as_str()));
        assert_eq!(newest.body, body.slice(..MAX_BODY));
    }
    let stats = assert_within(&emulator, MAX_REQUESTS, MAX_BODY);
    assert_eq!(
        stats,
        RecordStats {
            recorded: LARGE,
            kept: MAX_REQUESTS,
            dropped: LARGE - MAX_REQUESTS,
            kept_bytes: MAX_REQUESTS * MAX_BODY,
            body_bytes_read: sent_bytes,
            truncated: LARGE,
        }
    );
    // The kept ones are the newest, in arrival order.
    let kept: Vec<String> = emulator
        .received()
        .iter()
        .map(|r| r.header("x-n").unwrap_or("?").to_owned())
        .collect();
    let expected: Vec<String> = (LARGE - MAX_REQUESTS..LARGE)
        .map(|n| n.to_string())
        .collect();
    assert_eq!(kept, expected);

    // A body within the cap is kept whole; received_since sees exactly the
    // requests after a count even once older ones were dropped, and
    // wait_for_requests counts dropped requests too.
    let before = emulator.received_count();
    let small = Bytes::from_static(br#"{"prompt": "a small one"}"#);
    create(
        &emulator,
        Provider::Soundverse,
        Some("Bearer sk_test"),
        small.clone(),
    )
    .send()
    .await?;
    let since = emulator.received_since(before);
    assert_eq!(since.len(), 1);
    assert_eq!(since[0].body, small);
    assert_eq!(
        since[0].json(),
        Some(serde_json::json!({"prompt": "a small one"}))
    );
    let waited = emulator.wait_for_requests(LARGE + 1, WAIT).await?;
    assert_eq!(waited.len(), MAX_REQUESTS);
    assert_within(&emulator, MAX_REQUESTS, MAX_BODY);
    Ok(())
}

/// Multipart text values count against the same per-request cap.
#[tokio::test]
async fn multipart_text_values_over_the_body_cap_are_counted_not_kept() -> Result<()> {
    const MAX_BODY: usize = 4096;
    let emulator = Emulator::builder()
        .pacing(Pacing::instant())
        .max_recorded_body_bytes(MAX_BODY)
        .start()
        .await?;
    let prompt = "p".repeat(10_000);
    let form = Form::new()
        .text("mode", "REMIX")
        .text("prompt", prompt.clone())
        .text("audio_path", "https://a.example/x.mp3");
    let response = http()
        .post(format!("{}/Remix", emulator.base_url(Provider::MusicGpt)))
        .header("authorization", "mgpt_test")
        .multipart(form)
        .send()
        .await?;
    ensure!(response.status() != StatusCode::UNAUTHORIZED);
    let received = emulator.received();
    assert_eq!(received.len(), 1);
    let parts = &received[0].form;
    let mode = parts.iter().find(|p| p.name == "mode").context("mode")?;
    assert_eq!(mode.text.as_deref(), Some("REMIX"));
    let kept_prompt = parts
        .iter()
        .find(|p| p.name == "prompt")
        .context("prompt")?;
    assert_eq!(kept_prompt.len, prompt.len(), "the length is still counted");
    assert_eq!(kept_prompt.text, None, "the value is over the cap");
    let stats = emulator.record_stats();
    assert!(stats.kept_bytes <= MAX_BODY, "{stats:?}");
    assert_eq!(stats.truncated, 1);
    Ok(())
}

// ---------------------------------------------------------------- connections

#[test]
fn the_default_header_read_timeout_is_10_s() {
    assert_eq!(DEFAULT_HEADER_READ_TIMEOUT, Duration::from_secs(10));
}

/// Reads until the server closes the connection (EOF, or a reset, which is
/// a close too); answers what it sent first.
async fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut received = Vec::new();
    let mut buffer = [0u8; 1024];
    loop {
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => return received,
            Ok(n) => received.extend_from_slice(&buffer[..n]),
        }
    }
}

/// Regression (issue 9, item 14): a connection that never finished its
/// headers stayed open forever.
#[tokio::test]
async fn a_connection_that_stops_mid_headers_is_closed_after_the_header_read_timeout() -> Result<()>
{
    const TIMEOUT: Duration = Duration::from_millis(300);
    // Far longer than TIMEOUT: only a safety net, so that a missing timeout
    // fails the test instead of hanging it.
    const SAFETY_NET: Duration = Duration::from_secs(60);
    let emulator = Emulator::builder()
        .pacing(Pacing::instant())
        .header_read_timeout(TIMEOUT)
        .start()
        .await?;
    let partial: [&[u8]; 3] = [
        b"",
        b"POST /soundverse/v6/gener",
        b"POST /soundverse/v6/generate/song HTTP/1.1\r\nHost: localhost\r\nContent-Ty",
    ];
    let mut clients = Vec::new();
    for bytes in partial {
        // Before the connect: the server's clock starts at its accept, which
        // can come before `connect` returns here, never before it is called.
        let started = Instant::now();
        let mut stream = TcpStream::connect(emulator.addr()).await?;
        stream.write_all(bytes).await?;
        clients.push(async move {
            let closed = tokio::time::timeout(SAFETY_NET, read_until_closed(&mut stream)).await;
            (bytes, started.elapsed(), closed)
        });
    }
    for (bytes, elapsed, closed) in futures::future::join_all(clients).await {
        let sent = String::from_utf8_lossy(bytes);
        let Ok(answer) = closed else {
            bail!("after sending {sent:?} the connection was still open after {SAFETY_NET:?}");
        };
        // The server's clock started after our connect was called.
        assert!(
            elapsed >= TIMEOUT,
            "{sent:?}: closed after only {elapsed:?}"
        );
        // Whatever was said before closing, it was no answer to a request.
        let answer = String::from_utf8_lossy(&answer);
        assert!(
            answer.is_empty() || answer.starts_with("HTTP/1.1 4"),
            "{sent:?}: {answer}"
        );
    }
    assert!(emulator.received().is_empty());

    // The timeout is about headers only: a request answered after longer
    // than it (held by a stall fault) still gets its answer.
    let response = http()
        .get(format!(
            "{}/status/generations/msg_nothing",
            emulator.base_url(Provider::Soundverse)
        ))
        .bearer_auth("sk_test")
        .header("x-emulator-fault", "stall:900ms")
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(emulator.received().len(), 1);
    Ok(())
}

#[test]
fn the_default_body_read_timeout_is_30_s() {
    assert_eq!(DEFAULT_BODY_READ_TIMEOUT, Duration::from_secs(30));
}

/// Issue 17: a create whose body stopped arriving held its connection (and
/// what was read of the body) for as long as the client liked. Every
/// provider's create, with and without a valid key, is now answered 408
/// after the body read timeout (or refused at once, unread), and creates
/// nothing.
#[tokio::test]
async fn a_create_whose_body_stalls_is_answered_408_after_the_body_read_timeout() -> Result<()> {
    const TIMEOUT: Duration = Duration::from_millis(200);
    const SAFETY_NET: Duration = Duration::from_secs(60);
    let emulator = Emulator::builder()
        .pacing(Pacing::instant())
        .body_read_timeout(TIMEOUT)
        .start()
        .await?;
    let mut clients = Vec::new();
    for provider in Provider::ALL {
        let (method, path, content_type, first_bytes) = match provider {
            Provider::Soundverse => ("POST", "/v6/generate/song", "application/json", "{"),
            Provider::SoundPiece => ("PUT", "/v1/create.remix_song", "application/json", "{"),
            Provider::MusicGpt => (
                "POST",
                "/Remix",
                "multipart/form-data; boundary=XyZ",
                "--XyZ\r\nContent-Disposition: form-data; name=\"prompt\"\r\n\r\nro",
            ),
            Provider::ElevenLabs => ("POST", "/v1/music", "application/json", "{"),
        };
        let auth = match provider {
            Provider::MusicGpt => "mgpt_test",
            Provider::ElevenLabs => "xi_test",
            _ => "Bearer sk_test",
        };
        for key in [Some(auth), None] {
            let key_header = key
                .map(|key| format!("{}: {key}\r\n", provider.info().auth.header_name()))
                .unwrap_or_default();
            let head = format!(
                "{method} {}{path} HTTP/1.1\r\nHost: localhost\r\n{key_header}\
                 Content-Type: {content_type}\r\nContent-Length: 1048576\r\n\r\n{first_bytes}",
                provider.prefix()
            );
            let mut stream = TcpStream::connect(emulator.addr()).await?;
            // The server's clock starts once it has the headers.
            let started = Instant::now();
            stream.write_all(head.as_bytes()).await?;
            clients.push(async move {
                let closed = tokio::time::timeout(SAFETY_NET, read_until_closed(&mut stream)).await;
                (provider, key.is_some(), started.elapsed(), closed)
            });
        }
    }
    for (provider, keyed, elapsed, closed) in futures::future::join_all(clients).await {
        let Ok(answer) = closed else {
            bail!("{provider:?} (key: {keyed}): still open after {SAFETY_NET:?}");
        };
        let answer = String::from_utf8_lossy(&answer);
        if provider == Provider::MusicGpt && !keyed {
            // A multipart upload without a key is refused before a byte of
            // it is read; the connection is closed after the answer.
            assert!(answer.starts_with("HTTP/1.1 401 "), "{answer}");
            continue;
        }
        assert!(
            answer.starts_with("HTTP/1.1 408 "),
            "{provider:?} (key: {keyed}): {answer}"
        );
        assert!(
            elapsed >= TIMEOUT,
            "{provider:?}: answered after {elapsed:?}"
        );
        assert_eq!(emulator.jobs_created(provider), 0);
    }
    Ok(())
}

/// `utime + stime` of process `pid`, in clock ticks (`/proc/<pid>/stat`).
fn cpu_ticks(pid: u32) -> Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name (field 2) may hold spaces; fields after it are plain.
    let rest = stat.rsplit_once(')').context("no command name")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Field 3 (state) is fields[0]; utime and stime are fields 14 and 15.
    let utime: u64 = fields.get(11).context("no utime")?.parse()?;
    let stime: u64 = fields.get(12).context("no stime")?.parse()?;
    Ok(utime + stime)
}

fn clock_ticks_per_second() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(100)
}

/// Kills the child when the test ends, whatever happens.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Regression (issue 9, item 14): once the process ran out of file
/// descriptors, the accept loop retried the failing accept at once, forever,
/// spinning a core.
///
/// The binary runs under `ulimit -n 64`; 100 clients that connect and send
/// nothing exhaust its descriptors (the header read timeout is set long, so
/// none is closed meanwhile). Once it reports the failing accept, its CPU
/// time over a window must stay far below a spinning loop's; once the
/// clients leave, it serves again.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn failing_accepts_back_off_instead_of_spinning_and_serving_resumes() -> Result<()> {
    const FD_LIMIT: u32 = 64;
    const CLIENTS: usize = 100;
    const WINDOW: Duration = Duration::from_secs(2);
    const SAFETY_NET: Duration = Duration::from_secs(60);
    let binary = env!("CARGO_BIN_EXE_songbind-emulator");
    let mut child = KillOnDrop(
        Command::new("sh")
            .arg("-c")
            .arg(format!(
                "ulimit -n {FD_LIMIT} && exec \"$0\" --port 0 --pacing instant --header-read-timeout 600s"
            ))
            .arg(binary)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?,
    );
    let pid = child.0.id();
    let stdout = child.0.stdout.take().context("stdout")?;
    let stderr = child.0.stderr.take().context("stderr")?;
    // Read stdout to its end (the emulator prints more after the first line,
    // and a closed pipe would fail those prints); hand over the first line.
    let (first_tx, first_rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines().map_while(Result::ok);
        let _ = first_tx.send(lines.next().unwrap_or_default());
        lines.for_each(drop);
    });
    let first_line = tokio::time::timeout(SAFETY_NET, first_rx).await??;
    let root = first_line
        .trim()
        .strip_prefix("songbind-emulator listening on ")
        .with_context(|| format!("unexpected first line {first_line:?}"))?
        .to_owned();
    let addr = root.trim_start_matches("http://").to_owned();

    // Every stderr line, as it comes.
    let (lines_tx, mut lines) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                return;
            }
        }
    });

    // Connections the kernel completes whether or not the server accepts
    // them; the server runs out of descriptors long before the last one.
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        clients.push(TcpStream::connect(&addr).await?);
    }
    let report = tokio::time::timeout(SAFETY_NET, async {
        while let Some(line) = lines.recv().await {
            if line.contains("cannot accept") {
                return Some(line);
            }
        }
        None
    })
    .await
    .context("the emulator never reported a failing accept")?
    .context("the emulator's stderr closed")?;
    assert!(
        report.contains("Too many open files") || report.contains("os error 24"),
        "{report}"
    );

    // Accepts keep failing during the window (no client has left): the
    // loop must mostly sleep.
    let before = cpu_ticks(pid)?;
    let started = Instant::now();
    tokio::time::sleep(WINDOW).await;
    let ticks = cpu_ticks(pid)? - before;
    let window_ticks = started.elapsed().as_secs_f64() * clock_ticks_per_second() as f64;
    let share = ticks as f64 / window_ticks;
    assert!(
        share < 0.2,
        "the emulator used {:.0}% of a core while accepts failed ({ticks} ticks)",
        share * 100.0
    );

    // The clients leave; the emulator serves again.
    drop(clients);
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(SAFETY_NET)
        .build()?;
    let response = client.get(format!("{root}/files/x.wav")).send().await?;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.bytes().await?, songbind_emulator::sample_wav());
    Ok(())
}
