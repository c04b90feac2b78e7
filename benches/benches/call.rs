//! One call over loopback: `songbind::soundpiece::SoundPiece::get(id, false)`
//! (generated client, retry layer, error mapping, id validation) against the
//! floor of the same GET made with raw reqwest (same URL, query and
//! headers, the same decode into the generated `RemixSongResponse`).
//!
//! Both clients are warm and keep one connection each; their calls
//! alternate (ABBA). Two servers, each answering both clients:
//!
//! * a fixed-body axum server that answers the bytes the emulator gave for
//!   a finished remix, so that the server's share of the latency is as
//!   small as it gets and the client layers' cost shows most (the target's
//!   figure);
//! * the emulator itself (instant pacing), for the same call against a
//!   stateful server.
//!
//! Both servers run on their own runtime thread; the clients share one
//! current-thread runtime on the main thread.
//!
//! `cargo bench -p songbind-benches --bench call` prints the ratios (target:
//! median latency at most 1.05x the floor's), then criterion's statistics.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::header;
use axum::routing::get;
use axum::serve::ListenerExt;
use bytes::Bytes;
use criterion::Criterion;
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderValue, USER_AGENT};
use songbind::soundpiece::{RemixRequest, SoundPiece};
use songbind::{Secret, WaitOptions};
use songbind_benches::timing::{self, Bound, Comparison, Mode};
use songbind_emulator::{Emulator, Pacing, Provider};
use songbind_soundpiece::types::RemixSongResponse;

const API_KEY: &str = "spk_bench_key";

/// The raw floor: the request the generated client sends, by hand.
struct RawClient {
    http: reqwest::Client,
    url: String,
    id: String,
    authorization: HeaderValue,
}

impl RawClient {
    fn new(base_url: &str, id: &str) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(Duration::from_secs(300))
            .build()
            .expect("reqwest client");
        Self {
            http,
            url: format!("{base_url}/v1/create.remix_song"),
            id: id.to_owned(),
            authorization: HeaderValue::from_str(&format!("Bearer {API_KEY}")).expect("header"),
        }
    }

    async fn get(&self) -> RemixSongResponse {
        let response = self
            .http
            .get(&self.url)
            .header(ACCEPT, "application/json")
            .query(&[("id", self.id.as_str()), ("wait", "false")])
            .header("api-version", "1")
            .header(AUTHORIZATION, self.authorization.clone())
            .header(USER_AGENT, concat!("songbind/", env!("CARGO_PKG_VERSION")))
            .send()
            .await
            .expect("raw GET is sent");
        assert!(response.status().is_success(), "{}", response.status());
        let body = response.bytes().await.expect("raw body");
        serde_json::from_slice(&body).expect("raw body decodes")
    }
}

async fn timed<T>(call: impl Future<Output = T>) -> Duration {
    let start = Instant::now();
    std::hint::black_box(call.await);
    start.elapsed()
}

/// Alternates raw and songbind calls, `rounds` of each, after a warm-up.
async fn compare(raw: &RawClient, songbind: &SoundPiece, id: &str, rounds: usize) -> Comparison {
    for _ in 0..50 {
        raw.get().await;
        songbind.get(id, false).await.expect("songbind GET");
    }
    let mut floor = Vec::with_capacity(rounds);
    let mut subject = Vec::with_capacity(rounds);
    for round in 0..rounds {
        if round % 2 == 0 {
            floor.push(timed(raw.get()).await);
            subject.push(timed(songbind.get(id, false)).await);
        } else {
            subject.push(timed(songbind.get(id, false)).await);
            floor.push(timed(raw.get()).await);
        }
    }
    Comparison::of(&floor, &subject)
}

fn print(label: &str, comparison: &Comparison) -> f64 {
    let ratio = comparison.time_ratio();
    println!(
        "call songbind/raw median latency, {label}: {ratio:.3}x; paired-round median {:.3}x",
        comparison.paired_ratio_median
    );
    timing::print_summary("raw", &comparison.floor);
    timing::print_summary("songbind", &comparison.subject);
    ratio
}

fn main() {
    let mode = Mode::from_args();
    let servers = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("server runtime");
    let clients = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("client runtime");

    let emulator = servers
        .block_on(Emulator::builder().pacing(Pacing::instant()).start())
        .expect("emulator starts");
    let emulator_base = emulator.base_url(Provider::SoundPiece);

    // A finished remix to read, and the emulator's answer for it.
    let on_emulator = SoundPiece::new(&emulator_base, &Secret::from(API_KEY)).expect("client");
    let id = clients.block_on(async {
        let request = RemixRequest::new(
            "https://example.com/source.mp3",
            "[Verse]\nThis is a demo song\n[Chorus]\nSing it loud",
            "rock song, energetic, male vocal",
        );
        let job = on_emulator.submit_remix(&request).await.expect("submit");
        let remix = job.wait(&WaitOptions::default()).await.expect("remix ends");
        remix.id
    });
    let body: Bytes = clients.block_on(async {
        reqwest::Client::new()
            .get(format!("{emulator_base}/v1/create.remix_song"))
            .query(&[("id", id.as_str()), ("wait", "false")])
            .bearer_auth(API_KEY)
            .send()
            .await
            .expect("emulator answers")
            .bytes()
            .await
            .expect("emulator body")
    });

    // The fixed-body server, answering those bytes.
    let fixed_body = body.clone();
    let app = Router::new().route(
        "/soundpiece/v1/create.remix_song",
        get(move || {
            let body = fixed_body.clone();
            async move { ([(header::CONTENT_TYPE, "application/json")], body) }
        }),
    );
    let listener = servers
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let fixed_base = format!(
        "http://{}/soundpiece",
        listener.local_addr().expect("address")
    );
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&accepted);
    let listener = listener.tap_io(move |_| {
        counter.fetch_add(1, Ordering::Relaxed);
    });
    servers.spawn(async move { axum::serve(listener, app).await });

    println!(
        "remix {id}: a {}-byte answer; {}",
        body.len(),
        match mode {
            Mode::Measure => "measure",
            Mode::Smoke => "smoke run (cargo test --benches): not a measurement",
        }
    );
    let rounds = mode.rounds(4001, 5);

    let fixed_raw = RawClient::new(&fixed_base, &id);
    let fixed_songbind = SoundPiece::new(&fixed_base, &Secret::from(API_KEY)).expect("client");
    let on_fixed = clients.block_on(compare(&fixed_raw, &fixed_songbind, &id, rounds));
    let fixed_ratio = print("fixed-body server", &on_fixed);

    println!(
        "    connections the fixed-body server accepted: {} (one per client: 2)",
        accepted.load(Ordering::Relaxed)
    );

    let emulator_raw = RawClient::new(&emulator_base, &id);
    let on_emulator = clients.block_on(compare(&emulator_raw, &on_emulator, &id, rounds / 2 + 1));
    let emulator_ratio = print("emulator", &on_emulator);

    timing::report(
        mode,
        "call songbind/raw median latency (fixed-body server)",
        fixed_ratio,
        Bound::AtMost,
        1.05,
    );
    timing::report(
        mode,
        "call songbind/raw median latency (emulator)",
        emulator_ratio,
        Bound::AtMost,
        1.05,
    );

    let mut criterion = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .configure_from_args();
    let mut group = criterion.benchmark_group("call (fixed-body server)");
    group.bench_function("raw reqwest", |b| {
        b.iter(|| clients.block_on(fixed_raw.get()))
    });
    group.bench_function("songbind SoundPiece::get", |b| {
        b.iter(|| clients.block_on(fixed_songbind.get(&id, false)))
    });
    group.finish();
    criterion.final_summary();
    drop(emulator);
}
