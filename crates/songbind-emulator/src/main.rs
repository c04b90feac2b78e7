//! `songbind-emulator`: serves the emulated providers on one port.
//!
//! ```text
//! songbind-emulator --port 8080
//! songbind-emulator --port 0 --pacing 0.05 --fault 'soundpiece=status:429:retry-after=1*2'
//! ```

use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use songbind_emulator::{
    DEFAULT_EMULATOR_MAX_CONNECTIONS, DEFAULT_MAX_RECORDED_BODY_BYTES,
    DEFAULT_MAX_RECORDED_REQUESTS, Emulator, Fault, FaultRule, Pacing, Provider,
};

/// A stateful local emulator of the Soundverse, SoundPiece, MusicGPT and
/// ElevenLabs Music APIs.
///
/// Base URLs: http://HOST:PORT/soundverse, http://HOST:PORT/soundpiece,
/// http://HOST:PORT/musicgpt and http://HOST:PORT/elevenlabs. Any non-empty
/// API key works, in each provider's own header form (Authorization, or
/// xi-api-key for ElevenLabs).
#[derive(Debug, Parser)]
#[command(version, about, long_about)]
struct Args {
    /// Port to listen on (0 picks a free one).
    #[arg(long, short, default_value_t = 8080, env = "SONGBIND_EMULATOR_PORT")]
    port: u16,

    /// Address to listen on.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    host: IpAddr,

    /// How fast time passes: `realtime`, `instant`, or a factor such as 0.1.
    #[arg(long, default_value = "realtime", value_parser = parse_pacing)]
    pacing: Pacing,

    /// Standard Webhooks secret (`whsec_<base64>`) for SoundPiece callbacks.
    #[arg(long, env = "SONGBIND_EMULATOR_WEBHOOK_SECRET")]
    webhook_secret: Option<String>,

    /// Fault for the whole run: `[PROVIDER=]FAULT[*TIMES]`, e.g.
    /// `soundverse=drop-stream:5`, `status:503:retry-after=2*3`, `musicgpt=lose-reply`.
    /// FAULT is one of status:CODE[:retry-after=SECS],
    /// page:CODE:html|text|empty[:retry-after=SECS] (a non-JSON error page),
    /// misleading:5XX (handled, then a "not taken" 5xx), echo-auth:CODE[:pad=N]
    /// (the key header echoed back), lose-reply, stall:DURATION,
    /// drop-stream:N, end-stream:N, stall-stream:N:DURATION, fragment.
    /// Without *TIMES it applies to every matching request.
    #[arg(long = "fault", value_parser = parse_fault_rule)]
    faults: Vec<FaultRule>,

    /// Most received requests kept in memory for inspection (the oldest are
    /// dropped first; only requests with a valid key are recorded).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_RECORDED_REQUESTS)]
    max_recorded_requests: usize,

    /// Most body bytes kept per recorded request (a longer body is cut; its
    /// length is still counted).
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_RECORDED_BODY_BYTES)]
    max_recorded_body_bytes: usize,

    /// How long a connection may take to send a request's headers (and an
    /// idle keep-alive connection may wait for its next request) before it
    /// is closed, e.g. `10s` or `500ms`.
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "10s",
        value_parser = parse_duration
    )]
    header_read_timeout: Duration,

    /// How long after its headers a request's body may take to arrive whole
    /// before the request is answered 408 and its connection closed, e.g.
    /// `30s` or `500ms`.
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "30s",
        value_parser = parse_duration
    )]
    body_read_timeout: Duration,

    /// Most connections served at once; at the cap, new ones wait until one
    /// closes.
    #[arg(
        long,
        value_name = "N",
        default_value_t = DEFAULT_EMULATOR_MAX_CONNECTIONS,
        value_parser = parse_max_connections
    )]
    max_connections: usize,

    /// Record when each job event is written (every Soundverse SSE event,
    /// every SoundPiece / MusicGPT status change) and write the records to
    /// this file on Ctrl-C, one `job seq unix_nanos status progress` per
    /// line. Off by default.
    #[arg(long, value_name = "PATH")]
    event_log: Option<std::path::PathBuf>,
}

/// `<n>ms` or `<n>s` (`n` a whole number), more than zero.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let duration = if let Some(ms) = text.strip_suffix("ms") {
        ms.parse().ok().map(Duration::from_millis)
    } else if let Some(secs) = text.strip_suffix('s') {
        secs.parse().ok().map(Duration::from_secs)
    } else {
        None
    };
    duration
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("`{text}` is not a duration such as `10s` or `500ms`"))
}

/// A whole number of connections, at least 1.
fn parse_max_connections(text: &str) -> Result<usize, String> {
    text.parse::<usize>()
        .ok()
        .filter(|n| *n >= 1)
        .ok_or_else(|| format!("`{text}` is not a number of connections (at least 1)"))
}

fn parse_pacing(text: &str) -> Result<Pacing, String> {
    match text {
        "realtime" => Ok(Pacing::realtime()),
        "instant" => Ok(Pacing::instant()),
        factor => factor
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite() && *f >= 0.0)
            .map(Pacing::scaled)
            .ok_or_else(|| format!("`{factor}` is not `realtime`, `instant` or a factor >= 0")),
    }
}

fn parse_fault_rule(text: &str) -> Result<FaultRule, String> {
    let (provider, rest) = match text.split_once('=') {
        Some((name, rest)) if !name.contains(':') => {
            let provider = Provider::from_name(name).ok_or_else(|| {
                let known: Vec<&str> = Provider::ALL.iter().map(|p| p.name()).collect();
                format!("unknown provider `{name}` (one of {})", known.join(", "))
            })?;
            (Some(provider), rest)
        }
        _ => (None, text),
    };
    let (fault, times) = match rest.rsplit_once('*') {
        Some((fault, times)) => (
            fault,
            Some(
                times
                    .parse::<u32>()
                    .map_err(|_| format!("`{times}` is not a number of times"))?,
            ),
        ),
        None => (rest, None),
    };
    let fault: Fault = fault
        .parse()
        .map_err(|e: songbind_emulator::ParseFaultError| e.to_string())?;
    let mut rule = FaultRule::new(fault);
    if let Some(provider) = provider {
        rule = rule.provider(provider);
    }
    Ok(match times {
        Some(times) => rule.times(times),
        None => rule.always(),
    })
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let mut builder = Emulator::builder()
        .bind(SocketAddr::new(args.host, args.port))
        .pacing(args.pacing)
        .max_recorded_requests(args.max_recorded_requests)
        .max_recorded_body_bytes(args.max_recorded_body_bytes)
        .header_read_timeout(args.header_read_timeout)
        .body_read_timeout(args.body_read_timeout)
        .max_connections(args.max_connections)
        .event_log(args.event_log.is_some());
    if let Some(secret) = &args.webhook_secret {
        builder = builder.webhook_secret(secret);
    }
    for rule in args.faults {
        builder = builder.fault(rule);
    }
    let emulator = match builder.start().await {
        Ok(emulator) => emulator,
        Err(error) => {
            eprintln!(
                "songbind-emulator: cannot listen on {}:{}: {error}",
                args.host, args.port
            );
            return ExitCode::FAILURE;
        }
    };
    // Write errors are ignored: a reader that closed stdout after the first
    // line (or never read it) must not stop the server.
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "songbind-emulator listening on {}",
        emulator.root_url()
    );
    for provider in Provider::ALL {
        let _ = writeln!(
            out,
            "  {:<11} {}",
            provider.name(),
            emulator.base_url(provider)
        );
    }
    let _ = writeln!(
        out,
        "  webhook secret (SoundPiece callbacks): {}",
        emulator.webhook_secret()
    );
    let _ = out.flush();
    drop(out);
    if tokio::signal::ctrl_c().await.is_err() {
        eprintln!("songbind-emulator: cannot listen for Ctrl-C; stopping");
    }
    if let Some(path) = &args.event_log {
        let text: String = emulator
            .take_event_log()
            .iter()
            .map(|record| record.to_line() + "\n")
            .collect();
        if let Err(error) = std::fs::write(path, text) {
            eprintln!(
                "songbind-emulator: cannot write the event log to {}: {error}",
                path.display()
            );
        }
    }
    emulator.shutdown().await;
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use songbind_emulator::{DEFAULT_BODY_READ_TIMEOUT, DEFAULT_HEADER_READ_TIMEOUT};

    use super::*;

    #[test]
    fn fault_flags_parse_with_and_without_provider_and_times() {
        let rule = parse_fault_rule("soundpiece=status:429:retry-after=1*2").unwrap();
        assert_eq!(rule.provider, Some(Provider::SoundPiece));
        assert_eq!(rule.times, 2);
        assert_eq!(
            rule.fault,
            Fault::Status {
                status: 429,
                retry_after: Some(1)
            }
        );
        let rule = parse_fault_rule("drop-stream:3").unwrap();
        assert_eq!(rule.provider, None);
        assert_eq!(rule.times, u32::MAX);
        let rule = parse_fault_rule("musicgpt=page:503:text:retry-after=1*3").unwrap();
        assert_eq!(rule.provider, Some(Provider::MusicGpt));
        assert_eq!(rule.times, 3);
        assert_eq!(
            rule.fault,
            Fault::Page {
                status: 503,
                body: songbind_emulator::PageBody::Text,
                retry_after: Some(1)
            }
        );
        let rule = parse_fault_rule("echo-auth:500:pad=40").unwrap();
        assert_eq!((rule.provider, rule.times), (None, u32::MAX));
        assert_eq!(
            rule.fault,
            Fault::EchoAuth {
                status: 500,
                pad: 40
            }
        );
        assert_eq!(
            parse_fault_rule("soundverse=misleading:504*1")
                .unwrap()
                .fault,
            Fault::Misleading { status: 504 }
        );
        assert!(
            parse_fault_rule("spotify=lose-reply")
                .unwrap_err()
                .contains("spotify")
        );
        assert!(
            parse_fault_rule("lose-reply*many")
                .unwrap_err()
                .contains("many")
        );
    }

    #[test]
    fn record_caps_default_to_the_library_defaults_and_can_be_set() {
        let args = Args::try_parse_from(["songbind-emulator"]).unwrap();
        assert_eq!(args.max_recorded_requests, DEFAULT_MAX_RECORDED_REQUESTS);
        assert_eq!(
            args.max_recorded_body_bytes,
            DEFAULT_MAX_RECORDED_BODY_BYTES
        );
        let args = Args::try_parse_from([
            "songbind-emulator",
            "--max-recorded-requests",
            "10",
            "--max-recorded-body-bytes",
            "0",
        ])
        .unwrap();
        assert_eq!(args.max_recorded_requests, 10);
        assert_eq!(args.max_recorded_body_bytes, 0);
        assert!(
            Args::try_parse_from(["songbind-emulator", "--max-recorded-requests", "-1"]).is_err()
        );
    }

    #[test]
    fn the_event_log_is_off_unless_a_path_is_given() {
        let args = Args::try_parse_from(["songbind-emulator"]).unwrap();
        assert_eq!(args.event_log, None);
        let args =
            Args::try_parse_from(["songbind-emulator", "--event-log", "events.log"]).unwrap();
        assert_eq!(args.event_log, Some("events.log".into()));
    }

    #[test]
    fn header_read_timeout_defaults_to_the_library_default_and_takes_ms_or_s() {
        let args = Args::try_parse_from(["songbind-emulator"]).unwrap();
        assert_eq!(args.header_read_timeout, DEFAULT_HEADER_READ_TIMEOUT);
        let args =
            Args::try_parse_from(["songbind-emulator", "--header-read-timeout", "250ms"]).unwrap();
        assert_eq!(args.header_read_timeout, Duration::from_millis(250));
        assert_eq!(parse_duration("3s"), Ok(Duration::from_secs(3)));
        for bad in ["0s", "10", "1.5s", "-1s", "soon"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn body_read_timeout_and_max_connections_default_to_the_library_defaults() {
        let args = Args::try_parse_from(["songbind-emulator"]).unwrap();
        assert_eq!(args.body_read_timeout, DEFAULT_BODY_READ_TIMEOUT);
        assert_eq!(args.max_connections, DEFAULT_EMULATOR_MAX_CONNECTIONS);
        let args = Args::try_parse_from([
            "songbind-emulator",
            "--body-read-timeout",
            "200ms",
            "--max-connections",
            "3",
        ])
        .unwrap();
        assert_eq!(args.body_read_timeout, Duration::from_millis(200));
        assert_eq!(args.max_connections, 3);
        for bad in [["--body-read-timeout", "0s"], ["--max-connections", "0"]] {
            assert!(
                Args::try_parse_from(["songbind-emulator", bad[0], bad[1]]).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn pacing_flag_accepts_names_and_factors_only() {
        assert_eq!(parse_pacing("instant").unwrap(), Pacing::instant());
        assert_eq!(parse_pacing("0.5").unwrap(), Pacing::scaled(0.5));
        assert!(parse_pacing("-1").is_err());
        assert!(parse_pacing("fast").is_err());
    }
}
