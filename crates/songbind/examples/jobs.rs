//! One job per provider, start to finish, offline against the emulator.
//!
//! ```sh
//! cargo run -p songbind --example jobs
//! ```
//!
//! Each job is followed through its events (stages, progress, outputs), the
//! same way for all three providers.

use std::time::Duration;

use futures::StreamExt;
use songbind::musicgpt::{AudioInput, MusicGpt};
use songbind::soundpiece::SoundPiece;
use songbind::soundverse::{GenerateRequest, Soundverse};
use songbind::{Job, JobEvent, Secret, WaitOptions};
use songbind_emulator::{Emulator, Pacing, Provider};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let emulator = Emulator::builder()
        .pacing(Pacing::scaled(0.02))
        .start()
        .await?;
    let key = Secret::from("demo_key");
    let options = WaitOptions::default()
        .poll_interval(Duration::from_millis(200))
        .timeout(Duration::from_secs(60));

    let soundverse = Soundverse::new(&emulator.base_url(Provider::Soundverse), &key)?;
    let job = soundverse
        .submit_generate(&GenerateRequest::new(
            "A cheerful pop song about friendship",
        ))
        .await?;
    follow(job, &options).await?;

    let soundpiece = SoundPiece::new(&emulator.base_url(Provider::SoundPiece), &key)?;
    let job = soundpiece
        .submit_remix(&songbind::soundpiece::RemixRequest::new(
            "https://example.com/source.mp3",
            "[Verse]\nThis is a demo song",
            "rock song, energetic, male vocal",
        ))
        .await?;
    follow(job, &options).await?;

    let musicgpt = MusicGpt::new(&emulator.base_url(Provider::MusicGpt), &key)?;
    let job = musicgpt
        .submit_remix(&songbind::musicgpt::RemixRequest::new(
            AudioInput::Url("https://www.youtube.com/watch?v=example123".into()),
            "Create an upbeat pop remix",
        ))
        .await?;
    follow(job, &options).await?;
    Ok(())
}

/// Prints every event of a job until it completes.
async fn follow(job: Job, options: &WaitOptions) -> songbind::Result<()> {
    println!("{} job {}", job.provider(), job.id());
    let mut events = std::pin::pin!(job.events(options));
    while let Some(event) = events.next().await {
        match event? {
            JobEvent::Stage {
                stage,
                progress,
                version,
            } => println!(
                "  {stage}{}{}",
                progress.map(|p| format!(" {p}%")).unwrap_or_default(),
                version.map(|v| format!(" (v{v})")).unwrap_or_default()
            ),
            JobEvent::StreamReady { version, url } => println!("  v{version} streams at {url}"),
            JobEvent::Output(output) => {
                println!("  output v{}: {}", output.version.unwrap_or(1), output.url)
            }
            JobEvent::Completed(done) => println!("  done: {} outputs\n", done.outputs.len()),
            _ => {}
        }
    }
    Ok(())
}
