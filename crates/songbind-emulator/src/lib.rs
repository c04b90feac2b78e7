//! A stateful local emulator of the Soundverse, SoundPiece, MusicGPT and
//! ElevenLabs Music APIs.
//!
//! It behaves like the providers over time, as
//! [stripe-mock](https://github.com/stripe/stripe-mock) does for Stripe but
//! with state: Soundverse streams every documented stage, SoundPiece jobs move
//! from `processing` to `ready` and call back with signed webhooks, MusicGPT
//! takes multipart uploads and reports each conversion, ElevenLabs answers
//! with the audio itself (whole, chunked, `multipart/mixed` beside its
//! metadata, or as server-sent events) within a concurrency limit. Output
//! URLs point at small WAV files the emulator serves itself.
//!
//! All providers share one port; each has its own base URL:
//!
//! | provider | base URL |
//! |---|---|
//! | Soundverse | `http://<host>:<port>/soundverse` |
//! | SoundPiece | `http://<host>:<port>/soundpiece` |
//! | MusicGPT | `http://<host>:<port>/musicgpt` |
//! | ElevenLabs | `http://<host>:<port>/elevenlabs` |
//!
//! Any non-empty key is accepted, in each provider's own header form
//! (`Authorization: Bearer <key>` for Soundverse and SoundPiece, the raw key
//! in `Authorization` for MusicGPT, `xi-api-key: <key>` for ElevenLabs). [`Pacing`] sets how fast time passes; [`Fault`]s make
//! requests fail in the ways real networks and providers do.
//!
//! Requests that pass the auth check are recorded for tests to read
//! ([`Emulator::received`]), within bounds: the last
//! [`DEFAULT_MAX_RECORDED_REQUESTS`] requests and the first
//! [`DEFAULT_MAX_RECORDED_BODY_BYTES`] of each body unless the builder says
//! otherwise ([`EmulatorBuilder::max_recorded_requests`],
//! [`EmulatorBuilder::max_recorded_body_bytes`]); [`Emulator::record_stats`]
//! counts what was let go.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! use songbind_emulator::{Emulator, Provider};
//!
//! let emulator = Emulator::start_for_tests().await?;
//! println!("Soundverse at {}", emulator.base_url(Provider::Soundverse));
//! emulator.shutdown().await;
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod elevenlabs;
mod event_log;
mod faults;
mod files;
mod musicgpt;
mod pacing;
mod provider;
mod record;
mod server;
mod soundpiece;
mod soundverse;
mod sse;
pub mod stack;
mod webhook;

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::watch;

pub use elevenlabs::DEFAULT_ELEVENLABS_CONCURRENCY;
pub use event_log::EventRecord;
pub use faults::{FAULT_HEADER, Fault, FaultRule, PageBody, ParseFaultError};
pub use files::sample_wav;
pub use pacing::Pacing;
pub use provider::Provider;
pub use record::{
    DEFAULT_MAX_RECORDED_BODY_BYTES, DEFAULT_MAX_RECORDED_REQUESTS, RECORDED_BODY_LIMIT,
    RecordStats, RecordedPart, RecordedRequest, WebhookDelivery,
};
pub use stack::{DEFAULT_BODY_READ_TIMEOUT, DEFAULT_HEADER_READ_TIMEOUT};

/// How many connections the emulator serves at once unless
/// [`EmulatorBuilder::max_connections`] says otherwise: enough for the scale
/// bench's 10,000 streamed jobs in flight, far above [`stack::Limits`]'s
/// default of 512, which suits a server that is not load-tested.
pub const DEFAULT_EMULATOR_MAX_CONNECTIONS: usize = 16_384;

/// The largest request body the emulator reads: MusicGPT's `/Remix` takes
/// uploads of up to 100 MiB and reads up to as much again of a larger one
/// (to answer its own 413), so bodies declared larger than 200 MiB are
/// answered 413 by the [`stack`] without being read. Every other route
/// refuses far smaller bodies itself.
pub const MAX_BODY_BYTES: usize = 2 * musicgpt::BODY_LIMIT;

/// The secret SoundPiece callbacks are signed with unless another is chosen
/// (`whsec_` + base64 of `songbind-emulator-webhook-secret`).
pub const DEFAULT_WEBHOOK_SECRET: &str = "whsec_c29uZ2JpbmQtZW11bGF0b3Itd2ViaG9vay1zZWNyZXQ=";

/// Configures and starts an [`Emulator`].
#[derive(Clone, Debug)]
pub struct EmulatorBuilder {
    bind: SocketAddr,
    pacing: Pacing,
    webhook_secret: String,
    faults: Vec<FaultRule>,
    record_limits: record::RecordLimits,
    header_read_timeout: Duration,
    body_read_timeout: Duration,
    max_connections: usize,
    elevenlabs_concurrency: usize,
    event_log: bool,
}

impl Default for EmulatorBuilder {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            pacing: Pacing::realtime(),
            webhook_secret: DEFAULT_WEBHOOK_SECRET.to_owned(),
            faults: Vec::new(),
            record_limits: record::RecordLimits::default(),
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            body_read_timeout: DEFAULT_BODY_READ_TIMEOUT,
            max_connections: DEFAULT_EMULATOR_MAX_CONNECTIONS,
            elevenlabs_concurrency: DEFAULT_ELEVENLABS_CONCURRENCY,
            event_log: false,
        }
    }
}

impl EmulatorBuilder {
    /// Listens on `127.0.0.1:<port>`; port 0 (the default) picks a free one.
    pub fn port(mut self, port: u16) -> Self {
        self.bind.set_port(port);
        self
    }

    /// Listens on this address.
    pub fn bind(mut self, addr: SocketAddr) -> Self {
        self.bind = addr;
        self
    }

    /// How fast emulated time passes (real-time-like by default).
    pub fn pacing(mut self, pacing: Pacing) -> Self {
        self.pacing = pacing;
        self
    }

    /// The Standard Webhooks secret (`whsec_<base64>`) SoundPiece callbacks
    /// are signed with.
    pub fn webhook_secret(mut self, secret: &str) -> Self {
        self.webhook_secret = secret.to_owned();
        self
    }

    /// A fault rule active from the start (per run).
    pub fn fault(mut self, rule: FaultRule) -> Self {
        self.faults.push(rule);
        self
    }

    /// How many recorded requests [`Emulator::received`] keeps, the oldest
    /// dropped first ([`DEFAULT_MAX_RECORDED_REQUESTS`] by default; 0 keeps
    /// none but still counts them).
    pub fn max_recorded_requests(mut self, max: usize) -> Self {
        self.record_limits.max_requests = max;
        self
    }

    /// How many body bytes are kept per recorded request
    /// ([`DEFAULT_MAX_RECORDED_BODY_BYTES`] by default): a body that fits is
    /// kept whole, a longer one is cut to its first `max` bytes (the rest is
    /// counted in [`RecordStats::body_bytes_read`], not stored). Multipart
    /// text values count against the same cap.
    pub fn max_recorded_body_bytes(mut self, max: usize) -> Self {
        self.record_limits.max_body_bytes = max;
        self
    }

    /// How long a connection may take to send a request's headers before it
    /// is closed ([`DEFAULT_HEADER_READ_TIMEOUT`] by default). It is also how
    /// long an idle keep-alive connection is kept waiting for its next
    /// request; a request being answered (a long-poll, an SSE stream) is
    /// never cut by it.
    pub fn header_read_timeout(mut self, timeout: Duration) -> Self {
        self.header_read_timeout = timeout;
        self
    }

    /// How long after its headers a request's body may take to arrive whole
    /// ([`DEFAULT_BODY_READ_TIMEOUT`] by default). Past it, the request is
    /// answered 408 and its connection closed, letting go of what was read;
    /// the deadline is not reset by each byte received.
    pub fn body_read_timeout(mut self, timeout: Duration) -> Self {
        self.body_read_timeout = timeout;
        self
    }

    /// How many connections are served at once ([`DEFAULT_EMULATOR_MAX_CONNECTIONS`]
    /// by default; at least 1). At the cap the emulator stops accepting
    /// until a connection closes; the clients wait in the listen backlog.
    pub fn max_connections(mut self, max: usize) -> Self {
        self.max_connections = max;
        self
    }

    /// How many ElevenLabs generations one key may have in flight
    /// ([`DEFAULT_ELEVENLABS_CONCURRENCY`] by default); past it a generation
    /// is refused with 429 `too_many_concurrent_requests`. A generation is in
    /// flight until its answer's last byte is sent or its client goes away.
    pub fn elevenlabs_concurrency(mut self, limit: usize) -> Self {
        self.elevenlabs_concurrency = limit;
        self
    }

    /// Records when each job event is written (off by default; see
    /// [`Emulator::take_event_log`]): every Soundverse SSE event, every
    /// SoundPiece and MusicGPT status change, with its wall-clock time.
    /// Off, it costs one branch per event.
    pub fn event_log(mut self, on: bool) -> Self {
        self.event_log = on;
        self
    }

    /// Binds the port and starts serving in the background.
    pub async fn start(self) -> io::Result<Emulator> {
        let listener = tokio::net::TcpListener::bind(self.bind).await?;
        let addr = listener.local_addr()?;
        let webhook_client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(io::Error::other)?;
        let state = Arc::new(State {
            root_url: format!("http://{addr}"),
            pacing: self.pacing,
            webhook_secret: self.webhook_secret,
            webhook_client,
            faults: Mutex::new(faults::FaultPlan::default()),
            requests: Mutex::new(record::RequestLog::new(self.record_limits)),
            deliveries: Mutex::new(Vec::new()),
            changed: watch::channel(0).0,
            soundverse: soundverse::SoundverseState::default(),
            soundpiece: soundpiece::SoundPieceState::default(),
            musicgpt: musicgpt::MusicGptState::default(),
            elevenlabs: elevenlabs::ElevenLabsState::new(self.elevenlabs_concurrency),
            pending_deliveries: Arc::default(),
            event_log: event_log::EventLog::new(self.event_log),
        });
        for rule in self.faults {
            state.lock(&state.faults).push(rule);
        }
        let (stop, stopped) = watch::channel(false);
        let limits = stack::Limits {
            header_read_timeout: self.header_read_timeout,
            body_read_timeout: self.body_read_timeout,
            max_body_bytes: MAX_BODY_BYTES,
            max_connections: self.max_connections,
            // Stopping closes every connection at once (SSE streams too).
            shutdown_grace: Duration::ZERO,
        };
        let task = tokio::spawn(server::serve(listener, Arc::clone(&state), limits, stopped));
        Ok(Emulator {
            addr,
            state,
            stop,
            task: Some(task),
        })
    }
}

/// A running emulator. Dropping it stops the server.
#[derive(Debug)]
pub struct Emulator {
    addr: SocketAddr,
    state: Arc<State>,
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// Returned by the `wait_for_*` methods when the awaited event did not happen in time.
#[derive(Debug, thiserror::Error)]
#[error("timed out after {0:?} waiting for the emulator")]
pub struct WaitTimeout(pub Duration);

impl Emulator {
    /// A builder with real-time pacing on a free loopback port.
    pub fn builder() -> EmulatorBuilder {
        EmulatorBuilder::default()
    }

    /// Takes the event records made so far (empty unless
    /// [`EmulatorBuilder::event_log`] turned the log on), oldest first.
    pub fn take_event_log(&self) -> Vec<EventRecord> {
        self.state.event_log.take()
    }

    /// Starts an emulator for tests: a free loopback port, instant pacing.
    pub async fn start_for_tests() -> io::Result<Self> {
        Self::builder().pacing(Pacing::instant()).start().await
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>`, the root every provider's base URL starts with.
    pub fn root_url(&self) -> &str {
        &self.state.root_url
    }

    /// The base URL to give a client of `provider`.
    pub fn base_url(&self, provider: Provider) -> String {
        format!("{}{}", self.state.root_url, provider.prefix())
    }

    /// The secret SoundPiece callbacks are signed with.
    pub fn webhook_secret(&self) -> &str {
        &self.state.webhook_secret
    }

    /// The recorded requests the log still keeps, in arrival order: every
    /// request that passed the provider's auth check, up to the last
    /// [`EmulatorBuilder::max_recorded_requests`] of them. Requests refused
    /// for a missing or invalid key are not recorded.
    pub fn received(&self) -> Vec<RecordedRequest> {
        self.state.lock(&self.state.requests).requests()
    }

    /// How many requests have been recorded since the start, including
    /// those the log has since dropped: take it before an action and pass it
    /// to [`Emulator::received_since`] to see the requests the action caused.
    pub fn received_count(&self) -> usize {
        self.state.lock(&self.state.requests).stats().recorded
    }

    /// The kept requests recorded after the first `count` (as returned by
    /// [`Emulator::received_count`]), in arrival order. Requests the log has
    /// dropped are missing, so keep the cap above what one action sends.
    pub fn received_since(&self, count: usize) -> Vec<RecordedRequest> {
        self.state.lock(&self.state.requests).since(count)
    }

    /// What the request log holds and what it let go.
    pub fn record_stats(&self) -> RecordStats {
        self.state.lock(&self.state.requests).stats()
    }

    /// Every webhook delivery attempt so far, in order.
    pub fn deliveries(&self) -> Vec<WebhookDelivery> {
        self.state.lock(&self.state.deliveries).clone()
    }

    /// How many jobs (generations, operations, tasks) `provider` has created.
    /// A request refused before any work counts for nothing; an idempotent
    /// replay does not create a second job.
    pub fn jobs_created(&self, provider: Provider) -> usize {
        match provider {
            Provider::Soundverse => self.state.soundverse.job_count(),
            Provider::SoundPiece => self.state.soundpiece.job_count(),
            Provider::MusicGpt => self.state.musicgpt.job_count(),
            Provider::ElevenLabs => self.state.elevenlabs.job_count(),
        }
    }

    /// How many generations of `provider` are being answered right now: for
    /// ElevenLabs, the generations holding a concurrency slot (all keys
    /// together). The other providers' jobs run detached from their
    /// requests and count 0.
    pub fn in_flight(&self, provider: Provider) -> usize {
        match provider {
            Provider::ElevenLabs => self.state.elevenlabs.in_flight(),
            _ => 0,
        }
    }

    /// Waits until at most `count` generations of `provider` are in flight
    /// (see [`Emulator::in_flight`]); answers how many are.
    pub async fn wait_for_in_flight(
        &self,
        provider: Provider,
        count: usize,
        timeout: Duration,
    ) -> Result<usize, WaitTimeout> {
        self.wait_until(timeout, || {
            let now = self.in_flight(provider);
            (now <= count).then_some(now)
        })
        .await
    }

    /// Adds a fault rule (per run) for the requests that follow.
    pub fn inject(&self, rule: FaultRule) {
        self.state.lock(&self.state.faults).push(rule);
    }

    /// Removes every fault rule not yet used up.
    pub fn clear_faults(&self) {
        self.state.lock(&self.state.faults).clear();
    }

    /// Waits until at least `count` requests have been recorded since the
    /// start (see [`Emulator::received_count`]); answers the requests the
    /// log keeps (all of them unless more than the cap were recorded).
    pub async fn wait_for_requests(
        &self,
        count: usize,
        timeout: Duration,
    ) -> Result<Vec<RecordedRequest>, WaitTimeout> {
        self.wait_until(timeout, || {
            let log = self.state.lock(&self.state.requests);
            (log.stats().recorded >= count).then(|| log.requests())
        })
        .await
    }

    /// Waits until at least `count` webhook delivery attempts have been made.
    pub async fn wait_for_deliveries(
        &self,
        count: usize,
        timeout: Duration,
    ) -> Result<Vec<WebhookDelivery>, WaitTimeout> {
        self.wait_until(timeout, || {
            let deliveries = self.deliveries();
            (deliveries.len() >= count).then_some(deliveries)
        })
        .await
    }

    /// How many webhook deliveries are still being attempted (started, not
    /// yet answered 2xx nor given up after their last attempt).
    pub fn deliveries_pending(&self) -> usize {
        self.state.pending_deliveries.count()
    }

    /// Waits until every webhook delivery started so far has ended (answered
    /// 2xx, or given up after its last attempt; retries wait as [`Pacing`]
    /// says), at most `timeout`. A process about to exit calls it so that a
    /// delivery in flight is not cut off.
    pub async fn flush_deliveries(&self, timeout: Duration) -> Result<(), WaitTimeout> {
        tokio::time::timeout(timeout, self.state.pending_deliveries.flushed())
            .await
            .map_err(|_| WaitTimeout(timeout))
    }

    /// Re-checks `ready` whenever the emulator records something, until it
    /// returns `Some` or `timeout` passes.
    async fn wait_until<T>(
        &self,
        timeout: Duration,
        ready: impl Fn() -> Option<T>,
    ) -> Result<T, WaitTimeout> {
        let mut changed = self.state.changed.subscribe();
        let wait = async {
            loop {
                if let Some(value) = ready() {
                    return value;
                }
                if changed.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::time::timeout(timeout, wait)
            .await
            .map_err(|_| WaitTimeout(timeout))
    }

    /// Stops serving and closes every open connection.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// State shared by every handler.
pub(crate) struct State {
    pub(crate) root_url: String,
    pub(crate) pacing: Pacing,
    pub(crate) webhook_secret: String,
    pub(crate) webhook_client: reqwest::Client,
    faults: Mutex<faults::FaultPlan>,
    requests: Mutex<record::RequestLog>,
    deliveries: Mutex<Vec<WebhookDelivery>>,
    /// Bumped whenever something is recorded, to wake `wait_for_*`.
    changed: watch::Sender<u64>,
    pub(crate) soundverse: soundverse::SoundverseState,
    pub(crate) soundpiece: soundpiece::SoundPieceState,
    pub(crate) musicgpt: musicgpt::MusicGptState,
    pub(crate) elevenlabs: elevenlabs::ElevenLabsState,
    /// Webhook deliveries still being attempted ([`Emulator::flush_deliveries`]).
    pub(crate) pending_deliveries: Arc<webhook::Pending>,
    pub(crate) event_log: event_log::EventLog,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("root_url", &self.root_url)
            .field("pacing", &self.pacing)
            .finish_non_exhaustive()
    }
}

impl State {
    /// Locks a mutex, recovering it if a handler panicked while holding it:
    /// the emulator keeps serving the requests that follow.
    pub(crate) fn lock<'a, T>(&self, mutex: &'a Mutex<T>) -> MutexGuard<'a, T> {
        mutex
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The public URL of an output file the emulator serves.
    pub(crate) fn output_url(&self, name: &str) -> String {
        format!("{}{}", self.root_url, files::output_path(name))
    }

    fn bump(&self) {
        self.changed.send_modify(|n| *n += 1);
    }

    /// Records an authenticated request with (the first bytes of) its body;
    /// answers its sequence number, for [`State::record_form`].
    pub(crate) fn record_request(&self, request: RecordedRequest, body: &[u8]) -> usize {
        let seq = self.lock(&self.requests).push(request, body);
        self.bump();
        seq
    }

    /// Attaches the parts a multipart handler read to recorded request `seq`
    /// (if the log still keeps it).
    pub(crate) fn record_form(&self, seq: usize, parts: Vec<RecordedPart>) {
        self.lock(&self.requests).attach_form(seq, parts);
        self.bump();
    }

    pub(crate) fn record_delivery(&self, delivery: WebhookDelivery) {
        self.lock(&self.deliveries).push(delivery);
        self.bump();
    }

    pub(crate) fn take_fault(
        &self,
        provider: Provider,
        method: &axum::http::Method,
        path: &str,
    ) -> Option<Fault> {
        self.lock(&self.faults).take(provider, method, path)
    }
}
