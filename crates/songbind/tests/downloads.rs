//! `Downloader::download` against a loopback axum server that counts the
//! requests it gets: the `.part` file is never written through a link
//! planted in its place, and a file already at the destination (or one that
//! appears there during the download) is replaced only with
//! `overwrite(true)`.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use songbind::{Downloader, Error};

/// What the server sends for `/song.wav`.
const SONG: &[u8] = b"RIFF\x24\x00\x00\x00WAVEfmt the downloaded song";

/// What the tests put in files that must not change.
const OLD: &[u8] = b"the user's own file, which must stay as it is";

#[derive(Clone)]
struct Shared {
    requests: Arc<AtomicUsize>,
    /// A path the server writes [`INTRUDER`] to before it answers
    /// `/appears.wav`, as if another program created it meanwhile.
    intruder: Arc<std::sync::Mutex<Option<PathBuf>>>,
}

/// What "another program" writes during `/appears.wav`.
const INTRUDER: &[u8] = b"created by someone else during the download";

struct Server {
    url: String,
    shared: Shared,
}

impl Server {
    async fn start() -> Self {
        let shared = Shared {
            requests: Arc::new(AtomicUsize::new(0)),
            intruder: Arc::default(),
        };
        let app = Router::new()
            .route("/song.wav", get(song))
            .route("/appears.wav", get(appears))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, shared }
    }

    fn requests(&self) -> usize {
        self.shared.requests.load(Ordering::SeqCst)
    }
}

async fn song(State(shared): State<Shared>) -> &'static [u8] {
    shared.requests.fetch_add(1, Ordering::SeqCst);
    SONG
}

async fn appears(State(shared): State<Shared>) -> &'static [u8] {
    shared.requests.fetch_add(1, Ordering::SeqCst);
    let path = shared.intruder.lock().unwrap().clone();
    if let Some(path) = path {
        std::fs::write(path, INTRUDER).unwrap();
    }
    SONG
}

fn part_of(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap().to_os_string();
    name.push(".part");
    path.with_file_name(name)
}

/// Asserts `error` is an I/O error naming `path` whose text contains `says`.
fn assert_io_error(error: &Error, path: &Path, kind: Option<ErrorKind>, says: &str) {
    match error {
        Error::Io {
            path: named,
            source,
        } => {
            assert_eq!(named, &path.display().to_string(), "{error}");
            if let Some(kind) = kind {
                assert_eq!(source.kind(), kind, "{error}");
            }
            assert!(error.to_string().contains(says), "{error}");
        }
        other => panic!(
            "expected an I/O error naming {}, got {other:?}",
            path.display()
        ),
    }
}

#[cfg(unix)]
#[tokio::test]
async fn a_symlink_planted_at_the_part_file_is_never_written_through() {
    let server = Server::start().await;
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("victim.txt");
    std::fs::write(&victim, OLD).unwrap();
    let target = dir.path().join("song.wav");
    let part = part_of(&target);
    std::os::unix::fs::symlink(&victim, &part).unwrap();

    for overwrite in [false, true] {
        let result = Downloader::new()
            .overwrite(overwrite)
            .download(&format!("{}/song.wav", server.url), &target, |_, _| {})
            .await;
        let error = result.expect_err("a link in the way is refused");
        assert_io_error(&error, &part, None, "not a regular file");
        assert_eq!(
            std::fs::read(&victim).unwrap(),
            OLD,
            "the victim is untouched"
        );
        assert!(
            std::fs::symlink_metadata(&part)
                .unwrap()
                .file_type()
                .is_symlink(),
            "the link is left for the user to look at"
        );
        assert!(!target.exists(), "nothing was put in place");
    }
    assert_eq!(server.requests(), 0, "refused before fetching anything");
}

#[cfg(unix)]
#[tokio::test]
async fn a_dangling_symlink_at_the_part_file_creates_nothing_at_its_target() {
    let server = Server::start().await;
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("would-be-created.txt");
    let target = dir.path().join("song.wav");
    std::os::unix::fs::symlink(&victim, part_of(&target)).unwrap();
    let error = Downloader::new()
        .download(&format!("{}/song.wav", server.url), &target, |_, _| {})
        .await
        .expect_err("a link in the way is refused");
    assert_io_error(&error, &part_of(&target), None, "not a regular file");
    assert!(!victim.exists(), "nothing was created through the link");
    assert_eq!(server.requests(), 0);
}

#[tokio::test]
async fn an_existing_output_file_is_refused_unless_overwrite_is_on() {
    let server = Server::start().await;
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("song.wav");
    std::fs::write(&target, OLD).unwrap();
    let url = format!("{}/song.wav", server.url);

    let error = Downloader::new()
        .download(&url, &target, |_, _| {})
        .await
        .expect_err("an existing file is not replaced by default");
    assert_io_error(
        &error,
        &target,
        Some(ErrorKind::AlreadyExists),
        "overwrite(true)",
    );
    assert_eq!(std::fs::read(&target).unwrap(), OLD, "left untouched");
    assert!(!part_of(&target).exists());
    assert_eq!(server.requests(), 0, "refused before fetching anything");

    let written = Downloader::new()
        .overwrite(true)
        .download(&url, &target, |_, _| {})
        .await
        .unwrap();
    assert_eq!(written, SONG.len() as u64);
    assert_eq!(std::fs::read(&target).unwrap(), SONG, "replaced when asked");
    assert!(!part_of(&target).exists());
    assert_eq!(server.requests(), 1);
}

#[tokio::test]
async fn a_file_that_appears_during_the_download_is_not_replaced() {
    let server = Server::start().await;
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("song.wav");
    *server.shared.intruder.lock().unwrap() = Some(target.clone());
    let url = format!("{}/appears.wav", server.url);

    let error = Downloader::new()
        .download(&url, &target, |_, _| {})
        .await
        .expect_err("the file that appeared is not replaced");
    assert_io_error(
        &error,
        &target,
        Some(ErrorKind::AlreadyExists),
        "overwrite(true)",
    );
    assert_eq!(std::fs::read(&target).unwrap(), INTRUDER);
    assert!(!part_of(&target).exists(), "the .part file is cleaned up");
    assert_eq!(server.requests(), 1);

    let written = Downloader::new()
        .overwrite(true)
        .download(&url, &target, |_, _| {})
        .await
        .unwrap();
    assert_eq!(written, SONG.len() as u64);
    assert_eq!(std::fs::read(&target).unwrap(), SONG);
    assert_eq!(server.requests(), 2);
}

#[tokio::test]
async fn a_stale_part_file_is_refused_or_replaced_with_overwrite() {
    let server = Server::start().await;
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("song.wav");
    let part = part_of(&target);
    std::fs::write(&part, OLD).unwrap();
    let url = format!("{}/song.wav", server.url);

    let error = Downloader::new()
        .download(&url, &target, |_, _| {})
        .await
        .expect_err("a partial download in the way is refused");
    assert_io_error(
        &error,
        &part,
        Some(ErrorKind::AlreadyExists),
        "overwrite(true)",
    );
    assert_eq!(std::fs::read(&part).unwrap(), OLD);
    assert!(!target.exists());
    assert_eq!(server.requests(), 0);

    Downloader::new()
        .overwrite(true)
        .download(&url, &target, |_, _| {})
        .await
        .unwrap();
    assert_eq!(std::fs::read(&target).unwrap(), SONG);
    assert!(!part.exists());
    assert_eq!(server.requests(), 1);
}

#[tokio::test]
async fn a_fresh_download_lands_whole_and_leaves_no_part_file() {
    let server = Server::start().await;
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("song.wav");
    let written = Downloader::new()
        .download(&format!("{}/song.wav", server.url), &target, |_, _| {})
        .await
        .unwrap();
    assert_eq!(written, SONG.len() as u64);
    assert_eq!(std::fs::read(&target).unwrap(), SONG);
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert_eq!(names, ["song.wav"]);
    assert_eq!(server.requests(), 1);
}
