//! `songbind webhooks listen|verify` and `<provider> webhook-schema`, with
//! the real binary over loopback.
//!
//! Every listener binds port 0 and is read from its first stderr line;
//! every wait is on an event (a line on the child's stdout or stderr, an
//! answer, a process exit), under a generous guard that only fires when
//! something is broken. Listeners are stopped with SIGINT and must exit 0.

#![cfg(unix)]

use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStderr, ChildStdout, Command};

mod support;
use support::{Received, read_request};

/// A secret of the tests' own; it must never appear in anything printed.
const SECRET: &str = "whsec_dGVzdHMtb3duLXNpZ25pbmcta2V5LTVmMWUyZDNj";

/// How long any single event may take before the test is declared broken
/// (a guard, not a pause: every wait ends as soon as its event happens).
const GUARD: Duration = Duration::from_secs(60);

/// Variables the command reads, removed from each child's environment so
/// that the developer's own settings cannot change a test.
const COMMAND_VARS: [&str; 8] = [
    "SOUNDPIECE_WEBHOOK_SECRET",
    "SOUNDPIECE_API_KEY",
    "MUSICGPT_API_KEY",
    "SOUNDPIECE_BASE_URL",
    "MUSICGPT_BASE_URL",
    "SONGBIND_MOCK_PACING",
    "HTTP_PROXY",
    "http_proxy",
];

/// The binary with a clean environment and `env` added.
fn songbind(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_songbind"));
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for var in COMMAND_VARS {
        command.env_remove(var);
    }
    command.envs(env.iter().copied());
    command
}

/// What one finished run printed.
#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs the binary to its end.
async fn run(args: &[&str], env: &[(&str, &str)]) -> Run {
    run_in(None, args, env).await
}

/// [`run`] in `cwd`.
async fn run_in(cwd: Option<&Path>, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut command = songbind(args, env);
    if let Some(cwd) = cwd {
        command.current_dir(cwd);
    }
    let output = tokio::time::timeout(GUARD, command.output())
        .await
        .expect("the command ends")
        .expect("the songbind binary runs");
    let run = Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    assert_no_secret(&run.stdout, &run.stderr);
    run
}

/// Fails if the tests' secret shows anywhere.
fn assert_no_secret(stdout: &str, stderr: &str) {
    let bare = SECRET.trim_start_matches("whsec_");
    assert!(
        !stdout.contains(bare) && !stderr.contains(bare),
        "the secret was printed:\n{stdout}\n{stderr}"
    );
}

/// A running `webhooks listen`.
struct Listener {
    child: Child,
    /// `http://127.0.0.1:<port>/`, as its first stderr line said.
    url: String,
    stdout: Lines<BufReader<ChildStdout>>,
    stderr: Lines<BufReader<ChildStderr>>,
    /// Every stderr line read so far, for failure messages.
    stderr_seen: Vec<String>,
}

/// What a stopped listener printed after the lines already read.
#[derive(Debug)]
struct Stopped {
    code: Option<i32>,
    stdout: Vec<String>,
    stderr: Vec<String>,
}

impl Listener {
    /// Starts `songbind [global] webhooks listen --port 0 <args>` and reads
    /// the address from its first stderr line.
    async fn start(global: &[&str], args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut all = global.to_vec();
        all.extend_from_slice(&["webhooks", "listen", "--port", "0"]);
        all.extend_from_slice(args);
        let mut child = songbind(&all, env).spawn().expect("the binary starts");
        let stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
        let first = next_line(&mut stderr).await.expect("a first stderr line");
        let url = first
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("first stderr line: {first}"))
            .to_owned();
        assert!(url.starts_with("http://127.0.0.1:"), "{url}");
        assert!(url.ends_with('/'), "{url}");
        assert_ne!(url, "http://127.0.0.1:0/");
        Self {
            child,
            url,
            stdout,
            stderr,
            stderr_seen: vec![first],
        }
    }

    /// Starts `songbind webhooks listen --port <port> <args>`.
    async fn start_on(port: u16, args: &[&str]) -> Self {
        let mut child = songbind(
            &[&["webhooks", "listen", "--port", &port.to_string()], args].concat(),
            &[],
        )
        .spawn()
        .expect("the binary starts");
        let stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
        let first = next_line(&mut stderr).await.expect("a first stderr line");
        assert_eq!(first, format!("listening on http://127.0.0.1:{port}/"));
        Self {
            child,
            url: format!("http://127.0.0.1:{port}/"),
            stdout,
            stderr,
            stderr_seen: vec![first],
        }
    }

    /// The next line on stdout.
    async fn stdout_line(&mut self) -> String {
        match next_line(&mut self.stdout).await {
            Some(line) => line,
            None => panic!("stdout ended; stderr: {:#?}", self.stderr_seen),
        }
    }

    /// Reads stderr up to the first line containing `needle`, and returns
    /// it.
    async fn stderr_until(&mut self, needle: &str) -> String {
        loop {
            let Some(line) = next_line(&mut self.stderr).await else {
                panic!("stderr ended before {needle:?}: {:#?}", self.stderr_seen);
            };
            self.stderr_seen.push(line.clone());
            if line.contains(needle) {
                return line;
            }
        }
    }

    /// Sends SIGINT and reads what is left on stdout and stderr, to the
    /// end.
    async fn stop(mut self) -> Stopped {
        let pid = self.child.id().expect("still running").to_string();
        let sent = Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .await
            .expect("kill runs");
        assert!(sent.success());
        let mut stdout = Vec::new();
        while let Some(line) = next_line(&mut self.stdout).await {
            stdout.push(line);
        }
        let mut stderr = Vec::new();
        while let Some(line) = next_line(&mut self.stderr).await {
            stderr.push(line);
        }
        let status = tokio::time::timeout(GUARD, self.child.wait())
            .await
            .expect("it exits")
            .expect("its status");
        let all_stderr = [self.stderr_seen.clone(), stderr.clone()].concat();
        assert_no_secret(&stdout.join("\n"), &all_stderr.join("\n"));
        Stopped {
            code: status.code(),
            stdout,
            stderr,
        }
    }
}

/// The next line of a child's output, `None` at its end.
async fn next_line<R: tokio::io::AsyncBufRead + Unpin>(lines: &mut Lines<R>) -> Option<String> {
    tokio::time::timeout(GUARD, lines.next_line())
        .await
        .expect("a line within the guard")
        .expect("readable output")
}

/// Now, in unix seconds.
fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A signed SoundPiece delivery.
struct Delivery {
    id: String,
    timestamp: i64,
    signature: String,
    body: Vec<u8>,
}

impl Delivery {
    /// `body` signed with `secret` as `id` at `timestamp`.
    fn signed(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Self {
        let signature = standardwebhooks::Webhook::new(secret)
            .unwrap()
            .sign(id, timestamp, body)
            .unwrap();
        Self {
            id: id.to_owned(),
            timestamp,
            signature,
            body: body.to_vec(),
        }
    }

    /// POSTs it (with `body` instead of its own when given) and returns the
    /// status and the answer's text.
    async fn post(&self, url: &str, body: Option<&[u8]>) -> (u16, String) {
        let answer = client()
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", &self.id)
            .header("webhook-timestamp", self.timestamp.to_string())
            .header("webhook-signature", &self.signature)
            .body(body.unwrap_or(&self.body).to_vec())
            .send()
            .await
            .expect("the listener answers");
        let status = answer.status().as_u16();
        (status, answer.text().await.unwrap_or_default())
    }

    /// The headers as `curl -D` would have saved them on the receiving end.
    fn headers_file(&self) -> String {
        format!(
            "POST /hooks/soundpiece HTTP/1.1\r\nhost: 127.0.0.1:8787\r\n\
             content-type: application/json\r\nwebhook-id: {}\r\nwebhook-timestamp: {}\r\n\
             webhook-signature: {}\r\n\r\n",
            self.id, self.timestamp, self.signature
        )
    }
}

/// A client that never goes through a proxy.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(GUARD)
        .build()
        .unwrap()
}

/// POSTs an unsigned JSON body (MusicGPT) and returns the status.
async fn post_json(url: &str, body: &[u8]) -> u16 {
    client()
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_vec())
        .send()
        .await
        .expect("the listener answers")
        .status()
        .as_u16()
}

/// A `remix_song.ready` body for operation `op` with two outputs.
fn ready_body(op: &str) -> Vec<u8> {
    json!({
        "type": "remix_song.ready",
        "data": {"remix_song": {
            "id": op,
            "status": "ready",
            "outputs": [
                {"url": format!("https://cdn.example/{op}_1.wav"), "duration": 30.0},
                {"url": format!("https://cdn.example/{op}_2.wav"), "duration": 30.0}
            ]
        }}
    })
    .to_string()
    .into_bytes()
}

// ---------------------------------------------------------------- listen

#[tokio::test]
async fn soundpiece_deliveries_are_verified_de_duplicated_and_printed_once() {
    let mut listener =
        Listener::start(&[], &["--provider", "soundpiece", "--secret", SECRET], &[]).await;
    let delivery = Delivery::signed(SECRET, "msg_first", now_secs(), &ready_body("op_1"));

    let (status, _) = delivery.post(&listener.url, None).await;
    assert_eq!(status, 200);
    let line = listener.stdout_line().await;
    assert_eq!(
        line,
        "soundpiece remix_song.ready op_1 ready https://cdn.example/op_1_1.wav \
         https://cdn.example/op_1_2.wav webhook-id msg_first"
    );

    // Tampered: the body changed after signing.
    let tampered = ready_body("op_2");
    let (status, answer) = delivery.post(&listener.url, Some(&tampered)).await;
    assert_eq!(status, 400);
    assert!(answer.contains("matches"), "{answer}");
    let rejected = listener.stderr_until("rejected").await;
    assert!(
        rejected.contains("none of the 1 `v1` signature(s) matches"),
        "{rejected}"
    );

    // Signed with another secret.
    let other = Delivery::signed(
        "whsec_b3RoZXItc2VjcmV0",
        "msg_other",
        now_secs(),
        &ready_body("op_3"),
    );
    assert_eq!(other.post(&listener.url, None).await.0, 400);
    listener.stderr_until("rejected").await;

    // No signature at all.
    let unsigned = client()
        .post(&listener.url)
        .header("webhook-id", "msg_x")
        .header("webhook-timestamp", now_secs().to_string())
        .body(ready_body("op_4"))
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status().as_u16(), 400);
    let missing = listener.stderr_until("rejected").await;
    assert!(
        missing.contains("missing header `webhook-signature`"),
        "{missing}"
    );

    // Replayed: answered 2xx, so the provider stops, but not printed again.
    let (status, _) = delivery.post(&listener.url, None).await;
    assert_eq!(status, 200);
    let duplicate = listener.stderr_until("duplicate").await;
    assert!(duplicate.contains("msg_first"), "{duplicate}");

    // Only POST.
    let get = client().get(&listener.url).send().await.unwrap();
    assert_eq!(get.status().as_u16(), 405);

    let stopped = listener.stop().await;
    assert_eq!(stopped.code, Some(0), "{stopped:#?}");
    assert!(stopped.stdout.is_empty(), "printed more: {stopped:#?}");
    assert!(
        stopped
            .stderr
            .iter()
            .any(|l| l == "stopped: 1 accepted, 1 duplicate, 3 rejected, 0 not answered 2xx"),
        "{stopped:#?}"
    );
}

#[tokio::test]
async fn json_lines_carry_the_body_and_the_webhook_id_and_timestamp() {
    let mut listener = Listener::start(
        &["--json"],
        &["--provider", "soundpiece"],
        &[("SOUNDPIECE_WEBHOOK_SECRET", SECRET)],
    )
    .await;
    let sent_at = now_secs();
    let body = ready_body("op_json");
    Delivery::signed(SECRET, "msg_json", sent_at, &body)
        .post(&listener.url, None)
        .await;
    let failed = json!({
        "type": "remix_song.failed",
        "data": {"remix_song": {"id": "op_bad", "status": "failed",
                 "error": {"message": "The remix could not be produced"}}}
    })
    .to_string();
    Delivery::signed(SECRET, "msg_failed", sent_at, failed.as_bytes())
        .post(&listener.url, None)
        .await;

    let line = listener.stdout_line().await;
    let value: Value = serde_json::from_str(&line).expect("one JSON object per line");
    let body_json: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        value,
        json!({
            "provider": "soundpiece",
            "event": "remix_song.ready",
            "webhook_id": "msg_json",
            "timestamp": sent_at,
            "id": "op_json",
            "task_id": null,
            "status": "ready",
            "audio_urls": ["https://cdn.example/op_json_1.wav", "https://cdn.example/op_json_2.wav"],
            "image_url": null,
            "error": null,
            "body": body_json,
        })
    );
    let line = listener.stdout_line().await;
    let value: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(value["event"], "remix_song.failed");
    assert_eq!(value["status"], "failed");
    assert_eq!(value["error"], "The remix could not be produced");
    assert_eq!(value["audio_urls"], json!([]));

    let stopped = listener.stop().await;
    assert_eq!(stopped.code, Some(0), "{stopped:#?}");
    assert!(stopped.stdout.is_empty(), "{stopped:#?}");
}

#[tokio::test]
async fn musicgpt_deliveries_are_parsed_keyed_by_conversion_and_printed() {
    let mut listener = Listener::start(&[], &["--provider", "musicgpt"], &[]).await;
    let conversion = json!({
        "success": true, "conversion_type": "Remix", "task_id": "task-1",
        "conversion_id": "conv-1", "conversion_path": "https://cdn.example/conv-1.mp3",
        "conversion_path_wav": "https://cdn.example/conv-1.wav", "title": "Song"
    })
    .to_string();
    assert_eq!(post_json(&listener.url, conversion.as_bytes()).await, 200);
    assert_eq!(
        listener.stdout_line().await,
        "musicgpt conversion conv-1 succeeded task task-1 https://cdn.example/conv-1.mp3 \
         https://cdn.example/conv-1.wav"
    );
    // The same conversion again: a duplicate.
    assert_eq!(post_json(&listener.url, conversion.as_bytes()).await, 200);
    listener.stderr_until("duplicate conversion conv-1").await;

    let cover = json!({"success": true, "conversion_type": "Cover", "task_id": "task-1",
                       "image_path": "https://cdn.example/cover.png"})
    .to_string();
    assert_eq!(post_json(&listener.url, cover.as_bytes()).await, 200);
    assert_eq!(
        listener.stdout_line().await,
        "musicgpt cover - - task task-1 image https://cdn.example/cover.png"
    );
    let failed = json!({"success": false, "task_id": "task-2", "conversion_id": "conv-2",
                        "reason": "bad\u{1b}[2J input"})
    .to_string();
    assert_eq!(post_json(&listener.url, failed.as_bytes()).await, 200);
    let line = listener.stdout_line().await;
    assert_eq!(
        line,
        "musicgpt conversion conv-2 failed task task-2 error \"bad\\u{1b}[2J input\""
    );

    // Not a JSON object: 400.
    assert_eq!(post_json(&listener.url, b"[1, 2]").await, 400);
    let rejected = listener.stderr_until("rejected").await;
    assert!(rejected.contains("not a JSON object"), "{rejected}");

    let stopped = listener.stop().await;
    assert_eq!(stopped.code, Some(0), "{stopped:#?}");
    assert!(stopped.stdout.is_empty(), "{stopped:#?}");
}

/// A loopback server that records every request and answers `status`
/// (or, for `None`, closes the connection without answering).
async fn forward_target(status: Option<&'static str>) -> (String, Arc<Mutex<Vec<Received>>>) {
    scripted_target(move |_| status).await
}

/// A loopback server that records every request and answers the `n`th
/// (from 0) with `answer(n)` (`None`: closes the connection unanswered).
async fn scripted_target(
    answer: impl Fn(usize) -> Option<&'static str> + Send + Sync + 'static,
) -> (String, Arc<Mutex<Vec<Received>>>) {
    let answer = Arc::new(answer);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks/soundpiece", listener.local_addr().unwrap());
    let received = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&received);
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let log = Arc::clone(&log);
            let answer = Arc::clone(&answer);
            tokio::spawn(async move {
                let Some(request) = read_request(&mut socket).await else {
                    return;
                };
                let status = {
                    let mut log = log.lock().unwrap();
                    log.push(request);
                    answer(log.len() - 1)
                };
                if let Some(status) = status {
                    let answer = format!(
                        "HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                    );
                    let _ = socket.write_all(answer.as_bytes()).await;
                }
                let _ = socket.shutdown().await;
            });
        }
    });
    (url, received)
}

#[tokio::test]
async fn accepted_deliveries_are_forwarded_once_with_their_headers() {
    let (target, received) = forward_target(Some("202 Accepted")).await;
    let mut listener = Listener::start(
        &[],
        &[
            "--provider",
            "soundpiece",
            "--secret",
            SECRET,
            "--forward-to",
            &target,
        ],
        &[],
    )
    .await;
    listener
        .stderr_until("forwarding accepted deliveries to")
        .await;
    let first = Delivery::signed(SECRET, "msg_f1", now_secs(), &ready_body("op_f1"));
    let second = Delivery::signed(SECRET, "msg_f2", now_secs(), &ready_body("op_f2"));
    assert_eq!(first.post(&listener.url, None).await.0, 200);
    listener.stderr_until("forwarded msg_f1").await;
    assert_eq!(first.post(&listener.url, None).await.0, 200); // replay
    listener.stderr_until("duplicate msg_f1").await;
    assert_eq!(first.post(&listener.url, Some(b"{}")).await.0, 400); // tampered
    listener.stderr_until("rejected").await;
    assert_eq!(second.post(&listener.url, None).await.0, 200);
    let report = listener.stderr_until("forwarded msg_f2").await;
    assert_eq!(
        report,
        format!("forwarded msg_f2 to {target}: 202 Accepted")
    );

    let got = received.lock().unwrap().clone();
    assert_eq!(got.len(), 2, "{got:#?}");
    for (request, delivery) in got.iter().zip([&first, &second]) {
        assert_eq!(request.request_line, "POST /hooks/soundpiece HTTP/1.1");
        assert_eq!(request.body, delivery.body);
        assert_eq!(request.header("webhook-id"), Some(delivery.id.as_str()));
        assert_eq!(
            request.header("webhook-timestamp"),
            Some(delivery.timestamp.to_string().as_str())
        );
        assert_eq!(
            request.header("webhook-signature"),
            Some(delivery.signature.as_str())
        );
        assert_eq!(request.header("content-type"), Some("application/json"));
    }
    let stopped = listener.stop().await;
    assert_eq!(stopped.code, Some(0), "{stopped:#?}");
    assert_eq!(received.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn a_failing_forward_is_answered_502_so_the_provider_sends_it_again() {
    let (target, received) = forward_target(None).await;
    let mut listener = Listener::start(
        &[],
        &["--provider", "musicgpt", "--forward-to", &target],
        &[],
    )
    .await;
    let lyrics = br#"{"conversion_type":"Lyrics","task_id":"t-9","lyrics":"[Verse]"}"#;
    assert_eq!(post_json(&listener.url, lyrics).await, 502);
    let failed = listener.stderr_until("could not forward").await;
    assert!(failed.contains("lyrics of task t-9"), "{failed}");
    assert!(failed.ends_with("answered 502"), "{failed}");
    assert_eq!(listener.stdout_line().await, "musicgpt lyrics - - task t-9");
    // The redelivery is handled afresh (not a duplicate): still serving.
    assert_eq!(post_json(&listener.url, lyrics).await, 502);
    listener
        .stderr_until("could not forward lyrics of task t-9")
        .await;
    let stopped = listener.stop().await;
    assert_eq!(stopped.code, Some(0), "{stopped:#?}");
    assert_eq!(received.lock().unwrap().len(), 2);
    let last = stopped.stderr.last().cloned().unwrap_or_default();
    assert!(
        last.contains("0 accepted") && last.contains("2 not answered 2xx"),
        "{last}"
    );
}

#[tokio::test]
async fn a_forward_answered_by_a_redirect_is_not_followed_nor_called_delivered() {
    use songbind_hostile::{Script, Server, response};
    let server = Server::always(Script::Answer(response(
        "302 Found",
        &[("location", "/elsewhere")],
        b"",
    )))
    .await;
    let target = format!("{}/hooks?token=s3cr3t-forward-token", server.url);
    let mut listener = Listener::start(
        &[],
        &["--provider", "musicgpt", "--forward-to", &target],
        &[],
    )
    .await;
    let shown = listener
        .stderr_until("forwarding accepted deliveries to")
        .await;
    let cover = br#"{"conversion_type":"Cover","task_id":"t-3","image_path":"https://x/c.png"}"#;
    assert_eq!(post_json(&listener.url, cover).await, 502);
    let report = listener.stderr_until("forwarding cover of task t-3").await;
    assert!(report.contains("302 Found, not 2xx"), "{report}");
    let stopped = listener.stop().await;
    // One request: the redirect was not followed.
    assert_eq!(server.count(), 1);
    let all = [vec![shown, report], stopped.stderr].concat().join("\n");
    assert!(
        !all.contains("s3cr3t-forward-token"),
        "the query was printed: {all}"
    );
    assert!(!all.contains("?token"), "{all}");
}

#[tokio::test]
async fn two_listeners_forwarding_to_each_other_stop_at_the_first_loop() {
    // D forwards to E and E to D: each must know the other's port first.
    let (d_port, e_port) = (free_port().await, free_port().await);
    let d_url = format!("http://127.0.0.1:{d_port}/");
    let e_url = format!("http://127.0.0.1:{e_port}/");
    let mut d =
        Listener::start_on(d_port, &["--provider", "musicgpt", "--forward-to", &e_url]).await;
    let mut e =
        Listener::start_on(e_port, &["--provider", "musicgpt", "--forward-to", &d_url]).await;
    // Unkeyed (never de-duplicated), so only the loop check can stop it.
    let other = br#"{"hello":"loop"}"#;
    assert_eq!(post_json(&d.url, other).await, 502);
    d.stderr_until("answered 508").await;
    e.stderr_until("was answered 508 Loop Detected, not 2xx")
        .await;
    let d_stopped = d.stop().await;
    let e_stopped = e.stop().await;
    assert_eq!((d_stopped.code, e_stopped.code), (Some(0), Some(0)));
    // Each printed it once.
    assert_eq!(d_stopped.stdout.len(), 1, "{d_stopped:#?}");
    assert_eq!(e_stopped.stdout.len(), 1, "{e_stopped:#?}");
    let d_last = d_stopped.stderr.last().cloned().unwrap_or_default();
    assert!(d_last.contains("1 rejected"), "{d_last}");
}

/// A port that was free a moment ago (for two listeners that must know
/// each other's address before either starts).
async fn free_port() -> u16 {
    let socket = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    socket.local_addr().unwrap().port()
}

#[tokio::test]
async fn forwarding_to_the_listener_itself_is_refused_at_the_start() {
    let port = free_port().await.to_string();
    let run = run(
        &[
            "webhooks",
            "listen",
            "--provider",
            "musicgpt",
            "--port",
            &port,
            "--forward-to",
            &format!("http://localhost:{port}/hooks"),
        ],
        &[],
    )
    .await;
    assert_eq!(run.code, Some(2), "{run:#?}");
    assert!(run.stderr.contains("itself"), "{run:#?}");
}

#[tokio::test]
async fn slow_peers_are_cut_off_by_the_read_timeouts() {
    use songbind_hostile::client;
    let mut listener =
        Listener::start(&[], &["--provider", "musicgpt", "--read-timeout", "1"], &[]).await;
    let addr = listener
        .url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    // Headers that never end, and a body that never comes, many of each.
    let stalled = client::many(50, || client::stalled_headers(&addr))
        .await
        .unwrap();
    let unfinished = client::many(50, || {
        client::unfinished_body(&addr, "/", "application/json", 1 << 20, 10)
    })
    .await
    .unwrap();
    // A real delivery meanwhile is answered.
    let lyrics = br#"{"conversion_type":"Lyrics","task_id":"t-s","lyrics":"x"}"#;
    assert_eq!(post_json(&listener.url, lyrics).await, 200);
    assert_eq!(listener.stdout_line().await, "musicgpt lyrics - - task t-s");
    // Every slow peer is let go (with a 408 or without an answer).
    for peer in stalled.into_iter().chain(unfinished) {
        let answer = tokio::time::timeout(GUARD, client::closed_by_server(peer))
            .await
            .expect("a slow peer was held past the guard");
        let answer = String::from_utf8_lossy(&answer);
        assert!(
            answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
            "{answer}"
        );
    }
    // Headers without end are cut too (by the size limit or the timeout).
    let sent = tokio::time::timeout(GUARD, client::endless_headers(&addr))
        .await
        .expect("endless headers were read past the guard")
        .unwrap();
    assert!(sent < 64 << 20, "{sent} bytes of headers were read");
    let stopped = listener.stop().await;
    assert_eq!(stopped.code, Some(0), "{stopped:#?}");
}

#[tokio::test]
async fn a_stdout_nobody_reads_never_blocks_the_answers_or_ctrl_c() {
    // stdout is a pipe this test never reads: once its buffer (64 KiB)
    // is full, a line cannot be written.
    let mut child = songbind(
        &[
            "--json",
            "webhooks",
            "listen",
            "--port",
            "0",
            "--provider",
            "musicgpt",
        ],
        &[],
    )
    .spawn()
    .unwrap();
    let _unread_stdout = child.stdout.take().unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    let first = next_line(&mut stderr).await.unwrap();
    let url = first.strip_prefix("listening on ").unwrap().to_owned();
    let big =
        json!({"conversion_type": "Lyrics", "task_id": "t-big", "lyrics": "la ".repeat(12_000)});
    let big = serde_json::to_vec(&big).unwrap();
    let mut statuses = Vec::new();
    for task in 0..3 {
        let mut body = big.clone();
        let marker = format!("t-big-{task}");
        let at = body.windows(5).position(|w| w == b"t-big").unwrap();
        body.splice(at..at + 5, marker.bytes());
        statuses.push(post_json(&url, &body).await);
    }
    // The first (36 KB) fits in the pipe; the later ones cannot be printed: 503,
    // each within the print timeout, so that the provider retries them.
    assert_eq!(statuses[0], 200, "{statuses:?}");
    assert!(statuses[1..].iter().all(|s| *s == 503), "{statuses:?}");
    let pid = child.id().unwrap().to_string();
    Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .await
        .unwrap();
    let status = tokio::time::timeout(GUARD, child.wait())
        .await
        .expect("Ctrl-C ends it")
        .unwrap();
    assert_eq!(status.code(), Some(0));
}

#[tokio::test]
async fn listen_refuses_a_missing_or_unusable_secret_with_exit_2() {
    let missing = run(
        &[
            "webhooks",
            "listen",
            "--provider",
            "soundpiece",
            "--port",
            "0",
        ],
        &[],
    )
    .await;
    assert_eq!(missing.code, Some(2), "{missing:#?}");
    assert!(
        missing.stderr.contains("SOUNDPIECE_WEBHOOK_SECRET"),
        "{missing:#?}"
    );
    let bad = "whsec_not*base64!";
    let unusable = run(
        &[
            "webhooks",
            "listen",
            "--provider",
            "soundpiece",
            "--port",
            "0",
            "--secret",
            bad,
        ],
        &[],
    )
    .await;
    assert_eq!(unusable.code, Some(2), "{unusable:#?}");
    assert!(
        unusable.stderr.contains("invalid --secret"),
        "{unusable:#?}"
    );
    assert!(!unusable.stderr.contains(bad), "{unusable:#?}");
    let forward = run(
        &[
            "webhooks",
            "listen",
            "--provider",
            "musicgpt",
            "--port",
            "0",
            "--forward-to",
            "ftp://x/",
        ],
        &[],
    )
    .await;
    assert_eq!(forward.code, Some(2), "{forward:#?}");
    assert!(forward.stderr.contains("--forward-to"), "{forward:#?}");
    // A port already taken.
    let taken = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let busy = run(
        &[
            "webhooks",
            "listen",
            "--provider",
            "musicgpt",
            "--port",
            &port,
        ],
        &[],
    )
    .await;
    assert_eq!(busy.code, Some(2), "{busy:#?}");
    assert!(
        busy.stderr.contains("cannot listen on 127.0.0.1:"),
        "{busy:#?}"
    );
}

// ---------------------------------------------------------------- verify

#[tokio::test]
async fn verify_checks_a_saved_delivery() {
    let dir = tempfile::tempdir().unwrap();
    let sent_at = now_secs();
    let delivery = Delivery::signed(SECRET, "msg_saved", sent_at, &ready_body("op_saved"));
    let headers = dir.path().join("delivery.headers");
    let body = dir.path().join("delivery.json");
    let tampered = dir.path().join("tampered.json");
    std::fs::write(&headers, delivery.headers_file()).unwrap();
    std::fs::write(&body, &delivery.body).unwrap();
    std::fs::write(&tampered, ready_body("op_other")).unwrap();
    let (headers, body, tampered) = (
        headers.to_str().unwrap(),
        body.to_str().unwrap(),
        tampered.to_str().unwrap(),
    );
    let verify = |body: &str, extra: &[&str]| {
        let mut args = vec![
            "webhooks".to_owned(),
            "verify".to_owned(),
            "--provider".to_owned(),
            "soundpiece".to_owned(),
            "--secret".to_owned(),
            SECRET.to_owned(),
            "--headers-file".to_owned(),
            headers.to_owned(),
            "--body-file".to_owned(),
            body.to_owned(),
        ];
        args.extend(extra.iter().map(|a| (*a).to_owned()));
        args
    };
    fn args(v: &[String]) -> Vec<&str> {
        v.iter().map(String::as_str).collect()
    }

    let valid = run(&args(&verify(body, &[])), &[]).await;
    assert_eq!(valid.code, Some(0), "{valid:#?}");
    assert_eq!(valid.stderr, "");
    assert!(
        valid.stdout.starts_with(
            "soundpiece remix_song.ready op_saved ready https://cdn.example/op_saved_1.wav"
        ),
        "{valid:#?}"
    );
    let as_json = run(&args(&verify(body, &["--json"])), &[]).await;
    let value: Value = serde_json::from_str(as_json.stdout.trim()).unwrap();
    assert_eq!(value["webhook_id"], "msg_saved");
    assert_eq!(value["timestamp"], sent_at);

    let invalid = run(&args(&verify(tampered, &[])), &[]).await;
    assert_eq!(invalid.code, Some(1), "{invalid:#?}");
    assert_eq!(invalid.stdout, "");
    assert!(
        invalid
            .stderr
            .starts_with("error: invalid delivery: none of the 1 `v1` signature(s) matches"),
        "{invalid:#?}"
    );

    // Checked an hour later: too old, unless the clock is set explicitly.
    let later = (sent_at + 3600).to_string();
    let old = run(&args(&verify(body, &["--now", &later])), &[]).await;
    assert_eq!(old.code, Some(1), "{old:#?}");
    assert!(
        old.stderr.contains("beyond the 300 s tolerance"),
        "{old:#?}"
    );
    let wide = run(
        &args(&verify(body, &["--now", &later, "--tolerance", "3700"])),
        &[],
    )
    .await;
    assert_eq!(wide.code, Some(0), "{wide:#?}");
    let at_its_time = run(&args(&verify(body, &["--now", &sent_at.to_string()])), &[]).await;
    assert_eq!(at_its_time.code, Some(0), "{at_its_time:#?}");

    // No headers file for SoundPiece, or an unreadable one: exit 2.
    let no_headers = run(
        &[
            "webhooks",
            "verify",
            "--provider",
            "soundpiece",
            "--secret",
            SECRET,
            "--body-file",
            body,
        ],
        &[],
    )
    .await;
    assert_eq!(no_headers.code, Some(2), "{no_headers:#?}");
    let unreadable = run(
        &[
            "webhooks",
            "verify",
            "--provider",
            "soundpiece",
            "--secret",
            SECRET,
            "--headers-file",
            "/surely/not/here",
            "--body-file",
            body,
        ],
        &[],
    )
    .await;
    assert_eq!(unreadable.code, Some(2), "{unreadable:#?}");
    assert!(
        unreadable.stderr.contains("--headers-file"),
        "{unreadable:#?}"
    );

    // MusicGPT: no headers, the body's shape only.
    let musicgpt = run(
        &[
            "webhooks",
            "verify",
            "--provider",
            "musicgpt",
            "--body-file",
            body,
        ],
        &[],
    )
    .await;
    assert_eq!(musicgpt.code, Some(0), "{musicgpt:#?}");
    assert!(
        musicgpt.stdout.starts_with("musicgpt other"),
        "{musicgpt:#?}"
    );
    let not_object = dir.path().join("array.json");
    std::fs::write(&not_object, "[]").unwrap();
    let refused = run(
        &[
            "webhooks",
            "verify",
            "--provider",
            "musicgpt",
            "--body-file",
            not_object.to_str().unwrap(),
        ],
        &[],
    )
    .await;
    assert_eq!(refused.code, Some(1), "{refused:#?}");
    assert!(refused.stderr.contains("not a JSON object"), "{refused:#?}");
}

// ---------------------------------------------------------------- webhook-schema

/// `songbind <provider> webhook-schema`, parsed: a JSON Schema document.
async fn schema_of(provider: &str) -> Value {
    let run = run(&[provider, "webhook-schema"], &[]).await;
    assert_eq!(run.code, Some(0), "{run:#?}");
    assert_eq!(run.stderr, "", "{run:#?}");
    let schema: Value = serde_json::from_str(&run.stdout).expect("one JSON document");
    assert_eq!(
        schema["$schema"], "https://json-schema.org/draft/2020-12/schema",
        "{schema}"
    );
    assert_eq!(schema["type"], "object", "{schema}");
    schema
}

#[tokio::test]
async fn webhook_schema_prints_each_payloads_json_schema() {
    let soundpiece = schema_of("soundpiece").await;
    assert_eq!(soundpiece["title"], "RemixSongWebhook");
    assert_eq!(soundpiece["required"], json!(["data", "type"]));
    assert_eq!(soundpiece["properties"]["type"]["type"], "string");
    // data -> RemixSongResponse -> remix_song -> RemixSong, with its id and outputs.
    let reference = soundpiece["properties"]["data"]["$ref"].as_str().unwrap();
    let data = &soundpiece["$defs"][reference.trim_start_matches("#/$defs/")];
    assert!(data["properties"]["remix_song"].is_object(), "{data}");
    let song = &soundpiece["$defs"]["RemixSong"]["properties"];
    for field in ["id", "status", "outputs", "error"] {
        assert!(song[field].is_object(), "RemixSong.{field} missing: {song}");
    }

    let musicgpt = schema_of("musicgpt").await;
    assert_eq!(musicgpt["title"], "WebhookPayload");
    let properties = musicgpt["properties"].as_object().unwrap();
    for field in [
        "success",
        "conversion_type",
        "task_id",
        "conversion_id",
        "conversion_path",
        "conversion_path_wav",
        "lyrics_timestamped",
    ] {
        assert!(
            properties.contains_key(field),
            "{field} missing: {musicgpt}"
        );
    }

    // What the emulator delivers for a conversion has only documented keys.
    let mut listener = Listener::start(&["--json"], &["--provider", "musicgpt"], &[]).await;
    let remix = run(
        &[
            "--mock",
            "--no-download",
            "musicgpt",
            "remix",
            "--audio-path",
            "https://example.com/source.mp3",
            "--prompt",
            "p",
            "--webhook-url",
            &listener.url,
        ],
        &[("SONGBIND_MOCK_PACING", "instant")],
    )
    .await;
    assert_eq!(remix.code, Some(0), "{remix:#?}");
    let mut conversions = 0;
    for _ in 0..4 {
        let line: Value = serde_json::from_str(&listener.stdout_line().await).unwrap();
        if line["event"] == "conversion" {
            conversions += 1;
            for key in line["body"].as_object().unwrap().keys() {
                assert!(properties.contains_key(key), "undocumented {key}: {line}");
            }
        }
    }
    assert_eq!(conversions, 2);
    assert_eq!(listener.stop().await.code, Some(0));
}

// ---------------------------------------------------------------- offline, end to end

/// `songbind --mock [global] soundpiece remix --prompt <prompt>
/// --callback-url <callback>` (no download) at `pacing`.
async fn mock_remix_calling_back(
    callback: &str,
    prompt: &str,
    pacing: &str,
    global: &[&str],
) -> Run {
    let mut args = vec!["--mock", "--no-download"];
    args.extend_from_slice(global);
    args.extend_from_slice(&[
        "soundpiece",
        "remix",
        "--source-url",
        "https://example.com/source.mp3",
        "--lyrics",
        "[Verse] hello",
        "--prompt",
        prompt,
        "--callback-url",
        callback,
    ]);
    run(&args, &[("SONGBIND_MOCK_PACING", pacing)]).await
}

#[tokio::test]
async fn a_mock_soundpiece_remix_calls_back_a_mock_listener() {
    let mut listener = Listener::start(&["--mock"], &["--provider", "soundpiece"], &[]).await;
    listener
        .stderr_until("built-in emulator's webhook secret")
        .await;
    let remix = mock_remix_calling_back(&listener.url, "rock", "instant", &["--json"]).await;
    assert_eq!(remix.code, Some(0), "{remix:#?}");
    assert_eq!(remix.stderr, "", "{remix:#?}");
    let report: Value = serde_json::from_str(&remix.stdout).unwrap();
    let op = report["id"].as_str().unwrap().to_owned();
    // The remix exited only once its callback was answered: the line is there.
    let line = listener.stdout_line().await;
    assert!(
        line.starts_with(&format!(
            "soundpiece remix_song.ready {op} ready http://127.0.0.1:"
        )),
        "{line}"
    );
    assert!(line.contains(" webhook-id msg_"), "{line}");

    // A job that fails is called back too, before the command exits 1.
    let failed = mock_remix_calling_back(&listener.url, "rock [fail]", "instant", &[]).await;
    assert_eq!(failed.code, Some(1), "{failed:#?}");
    let line = listener.stdout_line().await;
    assert!(
        line.starts_with("soundpiece remix_song.failed op_"),
        "{line}"
    );
    assert!(
        line.contains(" failed error \"The remix could not be produced"),
        "{line}"
    );

    let stopped = listener.stop().await;
    assert_eq!(stopped.code, Some(0), "{stopped:#?}");
    assert!(stopped.stdout.is_empty(), "{stopped:#?}");
    assert!(
        stopped
            .stderr
            .iter()
            .any(|l| l.starts_with("stopped: 2 accepted")),
        "{stopped:#?}"
    );
}

#[tokio::test]
async fn a_mock_musicgpt_remix_delivers_every_webhook_before_it_exits() {
    let mut listener = Listener::start(&["--json"], &["--provider", "musicgpt"], &[]).await;
    let remix = run(
        &[
            "--mock",
            "--no-download",
            "--json",
            "musicgpt",
            "remix",
            "--audio-path",
            "https://example.com/source.mp3",
            "--prompt",
            "make it jazz",
            "--webhook-url",
            &listener.url,
        ],
        &[("SONGBIND_MOCK_PACING", "instant")],
    )
    .await;
    assert_eq!(remix.code, Some(0), "{remix:#?}");
    let report: Value = serde_json::from_str(&remix.stdout).unwrap();
    let task = report["id"].as_str().unwrap().to_owned();
    let mut events = Vec::new();
    for _ in 0..4 {
        let value: Value = serde_json::from_str(&listener.stdout_line().await).unwrap();
        assert_eq!(value["task_id"], task.as_str(), "{value}");
        events.push(value["event"].as_str().unwrap().to_owned());
    }
    events.sort();
    assert_eq!(events, ["conversion", "conversion", "cover", "lyrics"]);
    let stopped = listener.stop().await;
    assert_eq!(stopped.code, Some(0), "{stopped:#?}");
    assert!(stopped.stdout.is_empty(), "{stopped:#?}");
}

#[tokio::test]
async fn a_mock_run_waits_for_its_callback_retries_before_it_exits() {
    // The first attempt is answered 500: the emulator retries (after 10 s
    // of emulated time, 0.1 s at this pacing). The command must not exit
    // before that retry was answered.
    let (target, received) = scripted_target(|n| {
        Some(if n == 0 {
            "500 Internal Server Error"
        } else {
            "200 OK"
        })
    })
    .await;
    let remix = mock_remix_calling_back(&target, "rock", "0.01", &["--json"]).await;
    assert_eq!(remix.code, Some(0), "{remix:#?}");
    assert_eq!(remix.stderr, "", "{remix:#?}");
    let got = received.lock().unwrap().clone();
    assert_eq!(got.len(), 2, "{got:#?}");
    assert_eq!(got[0].body, got[1].body);
    assert_eq!(got[0].header("webhook-id"), got[1].header("webhook-id"));
    let signed = got[1].header("webhook-signature").unwrap_or_default();
    assert!(signed.starts_with("v1,"), "{signed}");
}

#[tokio::test]
async fn help_shows_the_webhook_commands_and_how_to_get_the_mock_secret() {
    let top = run(&["--help"], &[]).await;
    assert_eq!(top.code, Some(0), "{top:#?}");
    for example in [
        "songbind webhooks listen --provider soundpiece --port 8787",
        "songbind webhooks verify --provider soundpiece --headers-file",
        "songbind soundpiece webhook-schema",
        "SOUNDPIECE_WEBHOOK_SECRET",
    ] {
        assert!(
            top.stdout.contains(example),
            "{example} missing from --help"
        );
    }
    let listen = run(&["webhooks", "listen", "--help"], &[]).await;
    assert_eq!(listen.code, Some(0), "{listen:#?}");
    for text in [
        "built-in emulator's own secret",
        "songbind --mock webhooks listen",
        "--callback-url http://127.0.0.1:8787/",
        "\"webhook_id\", \"timestamp\"",
        "MusicGPT (which sends no id) by conversion id",
    ] {
        assert!(
            listen.stdout.contains(text),
            "{text} missing: {}",
            listen.stdout
        );
    }
    let verify = run(&["webhooks", "verify", "--help"], &[]).await;
    assert!(verify.stdout.contains("curl -D"), "{}", verify.stdout);
    assert!(
        verify.stdout.contains("--now <UNIX_SECONDS>"),
        "{}",
        verify.stdout
    );
    for provider in ["soundpiece", "musicgpt"] {
        let help = run(&[provider, "webhook-schema", "--help"], &[]).await;
        assert!(help.stdout.contains("JSON Schema"), "{}", help.stdout);
    }
}

#[tokio::test]
async fn a_mock_run_waits_at_most_five_seconds_for_a_callback_that_hangs() {
    // A receiver that takes the connection and never answers.
    let hang = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", hang.local_addr().unwrap());
    let accepted = Arc::new(Mutex::new(Vec::new()));
    let held = Arc::clone(&accepted);
    tokio::spawn(async move {
        while let Ok((socket, _)) = hang.accept().await {
            held.lock().unwrap().push(socket);
        }
    });
    let started = std::time::Instant::now();
    let remix = mock_remix_calling_back(&url, "rock", "instant", &[]).await;
    let took = started.elapsed();
    assert_eq!(remix.code, Some(0), "{remix:#?}");
    assert_eq!(
        remix.stderr,
        "--mock: 1 webhook delivery still not answered after 5 s: dropped\n"
    );
    assert!(took >= Duration::from_secs(5), "{took:?}");
    assert_eq!(accepted.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn verify_reads_its_files_only_up_to_a_cap() {
    for (flag, other) in [
        ("--body-file", "--headers-file"),
        ("--headers-file", "--body-file"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let small = dir.path().join("small");
        std::fs::write(&small, "webhook-id: msg_1\n").unwrap();
        let run = run(
            &[
                "webhooks",
                "verify",
                "--provider",
                "soundpiece",
                "--secret",
                SECRET,
                flag,
                "/dev/zero",
                other,
                small.to_str().unwrap(),
            ],
            &[],
        )
        .await;
        assert_eq!(run.code, Some(2), "{flag}: {run:#?}");
        assert!(
            run.stderr.contains(flag) && run.stderr.contains("larger than"),
            "{flag}: {run:#?}"
        );
    }
}

#[tokio::test]
async fn ctrl_c_says_how_many_deliveries_it_cut_off() {
    // The forward target never answers: the delivery is in flight at Ctrl-C.
    let target = songbind_hostile::Server::always(songbind_hostile::Script::Silent).await;
    let mut listener = Listener::start(
        &[],
        &["--provider", "musicgpt", "--forward-to", &target.url],
        &[],
    )
    .await;
    let url = listener.url.clone();
    let delivery = tokio::spawn(async move {
        let lyrics = br#"{"conversion_type":"Lyrics","task_id":"t-c","lyrics":"x"}"#;
        client()
            .post(&url)
            .header("content-type", "application/json")
            .body(lyrics.to_vec())
            .send()
            .await
            .map(|answer| answer.status().as_u16())
    });
    // Printed, then forwarded: the target has it when the line is out.
    assert_eq!(listener.stdout_line().await, "musicgpt lyrics - - task t-c");
    while target.count() == 0 {
        tokio::task::yield_now().await;
    }
    let stopped = listener.stop().await;
    assert_eq!(stopped.code, Some(0), "{stopped:#?}");
    let said: String = stopped.stderr.join("\n");
    assert!(said.contains("1 delivery is being handled"), "{said}");
    assert!(said.contains("1 cut off by the stop"), "{said}");
    // The provider never got a 2xx for it: it will deliver it again.
    let answered = delivery.await.unwrap();
    assert!(!matches!(answered, Ok(200..=299)), "{answered:?}");
}
