//! Offline quick start: a Soundverse sync generation against a local mock.
//!
//! The mock is an [`httpmock`] server on loopback, configured with the typed
//! helpers generated from `specs/soundverse.yaml`, so no key and no network
//! are needed:
//!
//! ```sh
//! cargo run -p songbind-soundverse --features httpmock --example offline_quickstart
//! ```

use httpmock::MockServer;
use songbind_soundverse::mock::MockServerExt;
use songbind_soundverse::types::{AudioData, ErrorBody, GenerateSongRequest, SyncSongResponse};
use songbind_soundverse::{Client, Error};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = MockServer::start_async().await;
    let song = |version: u8| AudioData {
        audio_url: Some(format!(
            "{}/files/friendship_anthem_v{version}.mp3",
            server.base_url()
        )),
        song_name: Some("Friendship Anthem".into()),
        licenses: None,
    };
    let answer = SyncSongResponse {
        message_id: Some("msg_quickstart".into()),
        song_name: Some("Friendship Anthem".into()),
        audio_data: vec![song(1), song(2)],
        ..Default::default()
    };
    server.generate_song_sync(|when, then| {
        when.into_inner().header("authorization", "Bearer sk_demo");
        then.ok(&answer);
    });
    server.extend_song_sync(|_when, then| {
        then.client_error(
            429,
            &ErrorBody {
                success: Some(false),
                message: Some("Rate limits have been passed for the user.".into()),
                ..Default::default()
            },
        );
    });

    let client = Client::with_api_key(&server.base_url(), "sk_demo")?;

    eprintln!("generating a song (sync) against {}", server.base_url());
    let response = client
        .generate_song_sync()
        .body(
            GenerateSongRequest::builder()
                .prompt("A cheerful pop song about friendship and adventure."),
        )
        .send()
        .await?;
    println!(
        "{} ({})",
        response.song_name.as_deref().unwrap_or("untitled"),
        response.message_id.as_deref().unwrap_or("no id")
    );
    for audio in &response.audio_data {
        println!("  {}", audio.audio_url.as_deref().unwrap_or("(no url)"));
    }

    // Errors decode into the provider's typed error body.
    let refused = client
        .extend_song_sync()
        .body(
            songbind_soundverse::types::ExtendSongRequest::builder()
                .audio_url("https://example.com/song.mp3")
                .lyrics("la la la")
                .extend_at(30_000_i64),
        )
        .send()
        .await;
    match refused {
        Err(Error::ErrorResponse(body)) => println!(
            "extend refused with {}: {}",
            body.status(),
            body.message.as_deref().unwrap_or("?")
        ),
        other => return Err(format!("expected a typed 429, got {other:?}").into()),
    }
    Ok(())
}
