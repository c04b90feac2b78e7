//! `songbind webhooks listen` and `songbind webhooks verify`.
//!
//! `listen` is a small HTTP server on `127.0.0.1` (never another address),
//! on the emulator's bounded server stack ([`stack::serve`]: header and
//! body read timeouts, a connection cap, a body limit): each POST is
//! checked by [`Receiver`] (SoundPiece's Standard Webhooks signature;
//! MusicGPT's shape), de-duplicated with [`SeenWebhookIds`] (fixed-size
//! digests), printed on stdout as one line by a thread of its own
//! ([`Printer`]: a stdout nobody reads never blocks the server), and sent
//! on to `--forward-to` (no redirects followed). It is answered 200 only
//! once printed and forwarded with a 2xx answer; otherwise 5xx, so that
//! the provider delivers it again: nothing waits in memory here. A refused
//! delivery is answered 400 and its reason goes to stderr; a duplicate is
//! answered 200 (so that the provider stops retrying) and only noted on
//! stderr. Ctrl-C stops it: the server stops taking connections, lets the
//! deliveries being handled finish (at most [`SHUTDOWN_GRACE`]), says how
//! many were cut off, and the command exits 0.
//!
//! `verify` judges one saved delivery the same way; `<provider>
//! webhook-schema` ([`print_schema`]) prints the payload's JSON Schema.
//!
//! The signing secret is a [`Secret`] from the moment it is parsed; nothing
//! here prints it, and [`WebhookError`] never quotes it.

use std::ffi::OsString;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::header::{ALLOW, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use songbind::Secret;
use songbind::webhook::{SeenWebhookIds, WebhookError};
use songbind_emulator::stack::{self, Limits};
use tokio::sync::oneshot;

use crate::args::{GlobalArgs, ListenArgs, VerifyArgs, WebhookProvider, WebhooksCommand};
use crate::delivery::{DeliveryLine, Receiver};
use crate::failure::{Failure, describe, one_line};
use crate::output::printable;
use crate::run::Interrupt;

/// The variable `--secret` falls back to.
pub const SECRET_VAR: &str = "SOUNDPIECE_WEBHOOK_SECRET";

/// The largest body the listener reads (larger ones are answered 413).
const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

/// Largest `--headers-file` read.
const HEADERS_FILE_LIMIT: u64 = 256 * 1024;

/// How long Ctrl-C waits for the deliveries being answered.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// How long one forward may take.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs `webhooks listen` or `webhooks verify`.
pub async fn run(
    command: WebhooksCommand,
    global: &GlobalArgs,
    interrupt: &mut Interrupt,
) -> Result<(), Failure> {
    let env = |var: &str| std::env::var_os(var);
    match command {
        WebhooksCommand::Listen(args) => listen(args, global, interrupt, env).await,
        WebhooksCommand::Verify(args) => verify(args, global, env).await,
    }
}

/// Where the signing secret came from, to name it in a refusal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SecretOrigin {
    /// `--secret`.
    Flag,
    /// [`SECRET_VAR`].
    Env,
    /// The built-in emulator's secret, under `--mock`.
    Mock,
    /// MusicGPT: no secret.
    None,
}

impl SecretOrigin {
    /// How a refusal names it.
    fn name(self) -> &'static str {
        match self {
            SecretOrigin::Flag => "--secret",
            SecretOrigin::Env => SECRET_VAR,
            SecretOrigin::Mock => "--mock's webhook secret",
            SecretOrigin::None => "the provider",
        }
    }
}

/// The receiver for `provider`: SoundPiece's secret from `--secret`, then
/// [`SECRET_VAR`], then (under `--mock`) the emulator's; MusicGPT refuses a
/// secret, since its deliveries are not signed.
fn receiver(
    provider: WebhookProvider,
    given: Option<Secret>,
    mock: bool,
    tolerance: Option<Duration>,
    env: impl Fn(&str) -> Option<OsString>,
) -> Result<(Receiver, SecretOrigin), Failure> {
    let (secret, origin) = match (provider, given) {
        (WebhookProvider::MusicGpt, Some(_)) => {
            return Err(Failure::invalid(
                "--secret",
                "MusicGPT deliveries are not signed, so there is nothing to verify with it",
            ));
        }
        (WebhookProvider::MusicGpt, None) => (None, SecretOrigin::None),
        (WebhookProvider::SoundPiece, Some(secret)) => (Some(secret), SecretOrigin::Flag),
        (WebhookProvider::SoundPiece, None) => match env(SECRET_VAR) {
            Some(value) => {
                let value = value
                    .into_string()
                    .map_err(|_| Failure::invalid(SECRET_VAR, "is not valid Unicode"))?;
                if value.trim().is_empty() {
                    return Err(Failure::invalid(SECRET_VAR, "is set but empty"));
                }
                (Some(Secret::from(value)), SecretOrigin::Env)
            }
            None if mock => (
                Some(Secret::from(songbind_emulator::DEFAULT_WEBHOOK_SECRET)),
                SecretOrigin::Mock,
            ),
            None => {
                return Err(Failure::Usage(format!(
                    "no SoundPiece webhook secret: pass --secret or set {SECRET_VAR} \
                     (or add --mock to use the built-in emulator's)"
                )));
            }
        },
    };
    let receiver = Receiver::new(provider, secret, tolerance)
        .map_err(|error| Failure::invalid(origin.name(), error))?;
    Ok((receiver, origin))
}

// ---------------------------------------------------------------- listen

/// `webhooks listen`: serves until Ctrl-C, then exits 0.
async fn listen(
    args: ListenArgs,
    global: &GlobalArgs,
    interrupt: &mut Interrupt,
    env: impl Fn(&str) -> Option<OsString>,
) -> Result<(), Failure> {
    let (receiver, origin) = receiver(args.provider, args.secret, global.mock, None, env)?;
    let socket = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, args.port))
        .await
        .map_err(|e| {
            Failure::invalid(
                "--port",
                format!("cannot listen on 127.0.0.1:{}: {e}", args.port),
            )
        })?;
    let addr = socket
        .local_addr()
        .map_err(|e| Failure::Runtime(format!("cannot read the listening address: {e}")))?;
    let forward = args
        .forward_to
        .as_deref()
        .map(|url| Forwarding::new(url, addr.port()))
        .transpose()?;
    let printer = Printer::start();
    // First thing on stderr: scripts and tests read the port from it.
    note(&format!("listening on http://{addr}/"));
    if origin == SecretOrigin::Mock {
        note("--mock: verifying with the built-in emulator's webhook secret");
    }
    if let Some(forwarding) = &forward {
        note(&format!(
            "forwarding accepted deliveries to {} (each is answered 2xx only once it answered 2xx)",
            forwarding.shown
        ));
    }
    note("Ctrl-C stops");
    let listener = Arc::new(Listener {
        receiver,
        json: global.json,
        seen: Mutex::new(SeenWebhookIds::default()),
        printer,
        forward,
        counts: Mutex::new(Counts::default()),
        in_flight: AtomicUsize::new(0),
        cut_off: AtomicUsize::new(0),
    });
    let app = Router::new()
        .fallback(receive)
        .with_state(Arc::clone(&listener))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES));
    let read_timeout = Duration::from_secs(args.read_timeout);
    let limits = Limits {
        header_read_timeout: read_timeout,
        body_read_timeout: read_timeout,
        max_body_bytes: MAX_BODY_BYTES,
        max_connections: MAX_CONNECTIONS,
        shutdown_grace: SHUTDOWN_GRACE,
    };
    let (stop, stopped) = oneshot::channel::<()>();
    let mut server = tokio::spawn(stack::serve(socket, app, limits, async move {
        let _ = stopped.await;
    }));
    tokio::select! {
        () = interrupt.received() => {}
        ended = &mut server => {
            let why = match ended {
                Ok(()) => "it ended".to_owned(),
                Err(error) => error.to_string(),
            };
            return Err(Failure::Runtime(format!("the listener stopped: {why}")));
        }
    }
    // Stop taking connections; let the deliveries being handled finish
    // (the stack closes what is left after its grace).
    let in_flight = listener.in_flight.load(Ordering::SeqCst);
    if in_flight > 0 {
        listener.printer.note(&format!(
            "stopping: {in_flight} deliver{} being handled, given up to {}s to finish",
            if in_flight == 1 { "y is" } else { "ies are" },
            SHUTDOWN_GRACE.as_secs()
        ));
    }
    let _ = stop.send(());
    let _ = tokio::time::timeout(SHUTDOWN_GRACE + Duration::from_secs(1), &mut server).await;
    server.abort();
    let unanswered =
        listener.cut_off.load(Ordering::SeqCst) + listener.in_flight.load(Ordering::SeqCst);
    let counts = *lock(&listener.counts);
    let mut last = format!(
        "stopped: {} accepted, {} duplicate{}, {} rejected, {} not answered 2xx",
        counts.accepted,
        counts.duplicates,
        if counts.duplicates == 1 { "" } else { "s" },
        counts.rejected,
        counts.failed + unanswered,
    );
    if unanswered > 0 {
        last.push_str(&format!(
            "; {unanswered} cut off by the stop: the provider sends {} again",
            if unanswered == 1 { "it" } else { "them" }
        ));
    }
    // Never blocks: a stderr nobody reads cannot hold the exit.
    listener.printer.last_note(&last).await;
    Ok(())
}

/// The most connections open at once: slow or idle peers beyond it wait in
/// the kernel's backlog instead of using up file descriptors.
const MAX_CONNECTIONS: usize = 512;

/// What every request handler shares.
struct Listener {
    /// Checks each delivery.
    receiver: Receiver,
    /// `--json`.
    json: bool,
    /// The digests of the deliveries accepted so far (the last 10 000).
    seen: Mutex<SeenWebhookIds>,
    /// Writes stdout and stderr on a thread of its own.
    printer: Printer,
    /// `--forward-to`.
    forward: Option<Forwarding>,
    /// For the last line.
    counts: Mutex<Counts>,
    /// Deliveries being handled now (said on Ctrl-C).
    in_flight: AtomicUsize,
    /// Deliveries whose connection the stop closed before they were answered.
    cut_off: AtomicUsize,
}

/// How many deliveries were accepted, answered as duplicates, refused, and
/// answered 5xx (not printed or not forwarded: the provider retries them).
#[derive(Clone, Copy, Debug, Default)]
struct Counts {
    accepted: usize,
    duplicates: usize,
    rejected: usize,
    failed: usize,
}

/// Locks a mutex, recovering it if a handler panicked holding it.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One line on stderr, before the server runs or for `verify`; a stderr
/// that cannot be written is ignored (never a panic, as `eprintln!` would).
fn note(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// The header a forward carries: the tokens of every listener it went
/// through, this one's last, so that a forward that comes back (a loop
/// through another name, a proxy or another listener) is refused instead
/// of forwarded again.
const FORWARDED_BY: &str = "songbind-forwarded-by";

/// How long a delivery waits for its line to be written before it is
/// answered 503 (stdout is a pipe nobody reads).
const PRINT_TIMEOUT: Duration = Duration::from_secs(5);

/// Lines waiting for the printer; past it a delivery is answered 503 at
/// once and a note is dropped.
const PRINT_QUEUE: usize = 64;

/// Writes stdout and stderr on a thread of its own, so that a terminal or
/// pipe that is not read never blocks the server or Ctrl-C: handlers wait
/// for their line with a timeout, and notes are dropped when it is stuck.
struct Printer {
    lines: std::sync::mpsc::SyncSender<Line>,
}

/// One line for the [`Printer`].
enum Line {
    /// A delivery on stdout; the result is sent back once flushed.
    Out(String, oneshot::Sender<std::io::Result<()>>),
    /// A note on stderr; the sender learns when it was written, if it asks.
    Err(String, Option<oneshot::Sender<()>>),
}

impl Printer {
    /// Starts the printing thread (it ends when the printer is dropped).
    fn start() -> Self {
        let (lines, queued) = std::sync::mpsc::sync_channel::<Line>(PRINT_QUEUE);
        std::thread::spawn(move || {
            while let Ok(line) = queued.recv() {
                match line {
                    Line::Out(text, done) => {
                        let mut stdout = std::io::stdout().lock();
                        let written = writeln!(stdout, "{text}").and_then(|()| stdout.flush());
                        let _ = done.send(written);
                    }
                    Line::Err(text, done) => {
                        note(&text);
                        if let Some(done) = done {
                            let _ = done.send(());
                        }
                    }
                }
            }
        });
        Self { lines }
    }

    /// Prints one delivery on stdout, waiting at most [`PRINT_TIMEOUT`].
    async fn print(&self, text: String) -> Result<(), String> {
        let (done, written) = oneshot::channel();
        self.lines
            .try_send(Line::Out(text, done))
            .map_err(|_| format!("{PRINT_QUEUE} lines are already waiting for stdout"))?;
        match tokio::time::timeout(PRINT_TIMEOUT, written).await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(error))) => Err(error.to_string()),
            Ok(Err(_)) => Err("the printer stopped".to_owned()),
            Err(_) => Err(format!(
                "stdout took more than {}s (is it read?)",
                PRINT_TIMEOUT.as_secs()
            )),
        }
    }

    /// A note on stderr, dropped if the printer is stuck.
    fn note(&self, text: &str) {
        let _ = self.lines.try_send(Line::Err(text.to_owned(), None));
    }

    /// The last note, waited for up to a second.
    async fn last_note(&self, text: &str) {
        let (done, written) = oneshot::channel();
        if self
            .lines
            .try_send(Line::Err(text.to_owned(), Some(done)))
            .is_ok()
        {
            let _ = tokio::time::timeout(Duration::from_secs(1), written).await;
        }
    }
}

/// Counts a delivery as being handled while it lives; one dropped before
/// [`InFlight::done`] (its connection closed by the stop) counts as cut off.
struct InFlight<'a> {
    listener: &'a Listener,
    done: bool,
}

impl<'a> InFlight<'a> {
    fn enter(listener: &'a Listener) -> Self {
        listener.in_flight.fetch_add(1, Ordering::SeqCst);
        Self {
            listener,
            done: false,
        }
    }

    /// The delivery was answered.
    fn done(mut self, response: Response) -> Response {
        self.done = true;
        response
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.listener.in_flight.fetch_sub(1, Ordering::SeqCst);
        if !self.done {
            self.listener.cut_off.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// Every request: POST only, then [`Listener::handle`].
async fn receive(
    State(listener): State<Arc<Listener>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let in_flight = InFlight::enter(&listener);
    let response = answer(&listener, method, uri, headers, body).await;
    in_flight.done(response)
}

/// The answer to one request.
async fn answer(
    listener: &Listener,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let path = printable(uri.path()).into_owned();
    if method != Method::POST {
        listener.printer.note(&format!(
            "ignored {} {path}: only POST is accepted (405)",
            printable(method.as_str())
        ));
        return (
            StatusCode::METHOD_NOT_ALLOWED,
            [(ALLOW, "POST")],
            "only POST is accepted\n",
        )
            .into_response();
    }
    match body {
        Ok(body) => listener.handle(&path, &headers, body).await,
        Err(rejection) => {
            lock(&listener.counts).rejected += 1;
            let reason = one_line(&rejection.body_text());
            listener
                .printer
                .note(&format!("rejected a delivery to {path}: {reason}"));
            (rejection.status(), format!("{reason}\n")).into_response()
        }
    }
}

impl Listener {
    /// Checks, de-duplicates, prints and forwards one delivery. It is
    /// answered 200 only once printed and (with `--forward-to`) forwarded
    /// with a 2xx answer; otherwise 5xx, and its key is forgotten, so that
    /// the provider's redelivery is handled afresh: the provider's retries
    /// are the queue, nothing is held here.
    async fn handle(&self, path: &str, headers: &HeaderMap, body: Bytes) -> Response {
        if let Some(forwarding) = &self.forward
            && headers
                .get_all(FORWARDED_BY)
                .iter()
                .any(|token| token.as_bytes() == forwarding.token.as_bytes())
        {
            lock(&self.counts).rejected += 1;
            self.printer.note(&format!(
                "rejected a delivery to {path}: it is this listener's own forward \
                 (--forward-to loops back here): answered 508"
            ));
            return (StatusCode::LOOP_DETECTED, "forwarding loop\n").into_response();
        }
        let accepted = match self.receiver.check(headers, &body, SystemTime::now()) {
            Ok(accepted) => accepted,
            Err(error) => {
                lock(&self.counts).rejected += 1;
                let reason = reason(&error);
                self.printer
                    .note(&format!("rejected a delivery to {path}: {reason}"));
                return (StatusCode::BAD_REQUEST, format!("{reason}\n")).into_response();
            }
        };
        let label = accepted.line.label();
        if let Some(key) = &accepted.key
            && !lock(&self.seen).first_time(key)
        {
            lock(&self.counts).duplicates += 1;
            self.printer.note(&format!(
                "duplicate {label} (already accepted): answered 200, not printed or forwarded again"
            ));
            return StatusCode::OK.into_response();
        }
        let failed = |why: String, status: StatusCode| {
            // Not done, so not accepted: the provider sends it again.
            if let Some(key) = &accepted.key {
                lock(&self.seen).forget(key);
            }
            lock(&self.counts).failed += 1;
            self.printer
                .note(&format!("{why}: answered {}", status.as_u16()));
            status.into_response()
        };
        if let Err(error) = self.printer.print(accepted.line.render(self.json)).await {
            return failed(
                format!("cannot print {label} on stdout ({error})"),
                StatusCode::SERVICE_UNAVAILABLE,
            );
        }
        if let Some(forwarding) = &self.forward {
            match forwarding.send(headers, body).await {
                Ok(status) if status.is_success() => self.printer.note(&format!(
                    "forwarded {label} to {}: {status}",
                    forwarding.shown
                )),
                Ok(status) => {
                    return failed(
                        format!(
                            "forwarding {label} to {} was answered {status}, not 2xx",
                            forwarding.shown
                        ),
                        StatusCode::BAD_GATEWAY,
                    );
                }
                Err(error) => {
                    return failed(
                        format!("could not forward {label} to {}: {error}", forwarding.shown),
                        StatusCode::BAD_GATEWAY,
                    );
                }
            }
        }
        lock(&self.counts).accepted += 1;
        StatusCode::OK.into_response()
    }
}

/// A refusal's reason, on one line, with provider text escaped.
fn reason(error: &WebhookError) -> String {
    one_line(&error.to_string())
}

/// One accepted delivery on stdout, flushed at once (`verify`).
fn print_line(line: &DeliveryLine, json: bool) -> std::io::Result<()> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{}", line.render(json))?;
    stdout.flush()
}

/// The headers a forward carries: the content type and every `webhook-*`
/// header, as received (several values of one name included).
fn forwarded_headers(headers: &HeaderMap) -> Vec<(HeaderName, HeaderValue)> {
    let mut kept: Vec<(HeaderName, HeaderValue)> = headers
        .iter()
        .filter(|(name, _)| name.as_str().starts_with("webhook-"))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    let content_type = headers
        .get(CONTENT_TYPE)
        .cloned()
        .unwrap_or_else(|| HeaderValue::from_static("application/json"));
    kept.push((CONTENT_TYPE, content_type));
    kept
}

/// `--forward-to`: where, and the client that sends.
struct Forwarding {
    /// The URL, as given.
    url: reqwest::Url,
    /// The URL as stderr shows it: without a user name, password, query or
    /// fragment (a `?token=` is a secret too).
    shown: String,
    /// The HTTP client: no redirects followed (a 3xx is not a delivery
    /// made), loopback targets bypass any proxy.
    client: reqwest::Client,
    /// This listener's [`FORWARDED_BY`] token.
    token: String,
}

impl Forwarding {
    /// Checks `--forward-to` (an absolute http(s) URL, not this listener
    /// itself at `own_port`) and builds the client.
    fn new(url: &str, own_port: u16) -> Result<Self, Failure> {
        let refuse = |reason: &str| Failure::invalid("--forward-to", reason);
        let url = reqwest::Url::parse(url)
            .map_err(|e| refuse(&format!("is not an absolute URL ({e})")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(refuse("must be an http or https URL"));
        }
        let mut shown = url.clone();
        let _ = shown.set_username("");
        let _ = shown.set_password(None);
        shown.set_query(None);
        shown.set_fragment(None);
        let host = url.host_str().unwrap_or_default();
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let loopback = host.eq_ignore_ascii_case("localhost")
            || host
                .parse::<IpAddr>()
                .is_ok_and(|ip| ip.is_loopback() || ip.is_unspecified());
        if loopback && url.port_or_known_default() == Some(own_port) {
            return Err(refuse(
                "points at this listener itself: every delivery would be forwarded to itself",
            ));
        }
        let mut builder = reqwest::Client::builder()
            .timeout(FORWARD_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none());
        if loopback {
            builder = builder.no_proxy();
        }
        let client = builder
            .build()
            .map_err(|e| Failure::Runtime(format!("cannot build the forwarding client: {e}")))?;
        Ok(Self {
            url,
            shown: shown.to_string(),
            client,
            token: uuid::Uuid::new_v4().simple().to_string(),
        })
    }

    /// Forwards one delivery; its answer's status, or why there is none
    /// (the URL never shown: it may hold a token).
    async fn send(&self, headers: &HeaderMap, body: Bytes) -> Result<StatusCode, String> {
        let mut request = self.client.post(self.url.clone()).body(body);
        for (name, value) in forwarded_headers(headers) {
            request = request.header(name, value);
        }
        for earlier in headers.get_all(FORWARDED_BY) {
            request = request.header(FORWARDED_BY, earlier);
        }
        request = request.header(FORWARDED_BY, &self.token);
        match request.send().await {
            Ok(answer) => Ok(answer.status()),
            Err(error) => Err(one_line(&describe(&error.without_url()))),
        }
    }
}

// ---------------------------------------------------------------- webhook-schema

/// `<provider> webhook-schema`: the JSON Schema of the provider's webhook
/// payload, derived from the generated type (`RemixSongWebhook`,
/// `WebhookPayload`) by `schemars`, pretty-printed on stdout.
pub fn print_schema(provider: WebhookProvider) -> Result<(), Failure> {
    let schema = match provider {
        WebhookProvider::SoundPiece => songbind::webhook::soundpiece::payload_schema(),
        WebhookProvider::MusicGpt => songbind::webhook::musicgpt::payload_schema(),
    };
    let text = crate::output::to_json(&schema, true)
        .map_err(|e| Failure::Runtime(format!("cannot write the schema: {e}")))?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{text}")
        .and_then(|()| stdout.flush())
        .map_err(|e| Failure::Runtime(format!("cannot write the schema to stdout: {e}")))
}

// ---------------------------------------------------------------- verify

/// `webhooks verify`: exit 0 and print the delivery when it is valid,
/// exit 1 with the reason otherwise.
async fn verify(
    args: VerifyArgs,
    global: &GlobalArgs,
    env: impl Fn(&str) -> Option<OsString>,
) -> Result<(), Failure> {
    let tolerance = args.tolerance.map(Duration::from_secs);
    let (receiver, _) = receiver(args.provider, args.secret, global.mock, tolerance, env)?;
    let headers = match (&args.headers_file, args.provider) {
        (Some(path), _) => {
            let text = read("--headers-file", path, HEADERS_FILE_LIMIT)?;
            songbind::webhook::parse_headers_file(&String::from_utf8_lossy(&text))
                .map_err(|error| Failure::invalid("--headers-file", error))?
        }
        (None, WebhookProvider::SoundPiece) => {
            return Err(Failure::Usage(
                "--headers-file is required for soundpiece: the signature is in the headers"
                    .to_owned(),
            ));
        }
        (None, WebhookProvider::MusicGpt) => HeaderMap::new(),
    };
    let body = read("--body-file", &args.body_file, MAX_BODY_BYTES as u64)?;
    let now = match args.now {
        None => SystemTime::now(),
        Some(secs) => clock_at(secs).ok_or_else(|| Failure::invalid("--now", "is out of range"))?,
    };
    let accepted = receiver
        .check(&headers, &body, now)
        .map_err(|error| Failure::Runtime(format!("invalid delivery: {}", reason(&error))))?;
    print_line(&accepted.line, global.json)
        .map_err(|e| Failure::Runtime(format!("cannot write the result to stdout: {e}")))
}

/// Reads a file (or pipe, or device) a flag names, up to `cap` bytes; a
/// failure names the flag (exit 2).
fn read(flag: &str, path: &Path, cap: u64) -> Result<Vec<u8>, Failure> {
    songbind::files::read_capped(path, cap)
        .map_err(|e| Failure::invalid(flag, format!("{}: {e}", path.display())))
}

/// The clock reading `secs` unix seconds.
fn clock_at(secs: i64) -> Option<SystemTime> {
    let distance = Duration::from_secs(secs.unsigned_abs());
    if secs >= 0 {
        UNIX_EPOCH.checked_add(distance)
    } else {
        UNIX_EPOCH.checked_sub(distance)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<OsString> + 'a {
        move |name| {
            vars.iter()
                .find(|(var, _)| *var == name)
                .map(|(_, value)| OsString::from(value))
        }
    }

    #[test]
    fn the_secret_comes_from_the_flag_then_the_variable_then_mock() {
        let sp = WebhookProvider::SoundPiece;
        let flag = Some(Secret::from("whsec_ZmxhZw=="));
        let vars = [(SECRET_VAR, "whsec_ZW52")];
        let (_, origin) = receiver(sp, flag, false, None, env(&vars)).unwrap();
        assert_eq!(origin, SecretOrigin::Flag);
        let (_, origin) = receiver(sp, None, true, None, env(&vars)).unwrap();
        assert_eq!(origin, SecretOrigin::Env);
        let (_, origin) = receiver(sp, None, true, None, env(&[])).unwrap();
        assert_eq!(origin, SecretOrigin::Mock);
        let missing = receiver(sp, None, false, None, env(&[])).unwrap_err();
        assert!(missing.to_string().contains(SECRET_VAR), "{missing}");
        let empty = receiver(sp, None, false, None, env(&[(SECRET_VAR, " ")])).unwrap_err();
        assert!(empty.to_string().contains("empty"), "{empty}");
        let bad = "whsec_not*base64!";
        let refused = receiver(sp, Some(Secret::from(bad)), false, None, env(&[])).unwrap_err();
        assert!(matches!(refused, Failure::Usage(_)));
        assert!(!refused.to_string().contains(bad), "{refused}");
        let musicgpt = receiver(
            WebhookProvider::MusicGpt,
            Some(Secret::from("x")),
            false,
            None,
            env(&[]),
        );
        assert!(musicgpt.is_err());
    }

    #[test]
    fn forward_targets_must_be_http_and_hide_their_password() {
        assert!(Forwarding::new("ftp://x/", 1).is_err());
        assert!(Forwarding::new("/relative", 1).is_err());
        let forwarding = Forwarding::new("http://user:pa55@127.0.0.1:9/x?token=t0k#f", 1).unwrap();
        assert!(!forwarding.shown.contains("pa55"), "{}", forwarding.shown);
        assert_eq!(forwarding.shown, "http://127.0.0.1:9/x");
    }

    #[test]
    fn forwarding_to_the_listener_itself_is_refused() {
        for url in [
            "http://127.0.0.1:8787/",
            "http://localhost:8787/hooks",
            "http://[::1]:8787/",
            "http://0.0.0.0:8787/",
            "http://127.0.0.2:8787/",
        ] {
            let refused = Forwarding::new(url, 8787).err().expect(url);
            assert!(refused.to_string().contains("itself"), "{refused}");
        }
        assert!(Forwarding::new("http://127.0.0.1:8788/", 8787).is_ok());
        assert!(Forwarding::new("http://127.0.0.1/", 80).is_err());
    }

    #[test]
    fn forwards_keep_the_webhook_headers_and_the_content_type() {
        let mut headers = HeaderMap::new();
        headers.insert("webhook-id", HeaderValue::from_static("msg_1"));
        headers.insert("authorization", HeaderValue::from_static("Bearer x"));
        let kept = forwarded_headers(&headers);
        let names: Vec<&str> = kept.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(names, ["webhook-id", "content-type"]);
    }

    #[test]
    fn the_clock_can_be_set_either_side_of_the_epoch() {
        assert_eq!(clock_at(0), Some(UNIX_EPOCH));
        assert!(clock_at(1_700_000_000).is_some());
        assert!(clock_at(-5).is_some() || cfg!(windows));
    }
}
