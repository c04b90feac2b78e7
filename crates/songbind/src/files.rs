//! The file discipline every writer and reader of this crate and of the
//! `songbind` command shares, so that the next surface gets it for free:
//!
//! - a file is written under a temporary name created exclusively
//!   ([`create_new`]: `O_CREAT | O_EXCL`, which never follows a link), then
//!   [`place`]d under its final name;
//! - placing never replaces anything unless asked, and when asked replaces
//!   only a regular file: never a symbolic link, a directory or a device;
//! - a read of a file, pipe or device stops at a byte cap ([`read_capped`]):
//!   the cap applies to what is read, not to a size the file system reports
//!   (a pipe or `/dev/zero` has none).

use std::io::ErrorKind;
use std::path::Path;

use std::io::Read;

/// Creates `path` for writing, failing if anything is there (even a
/// dangling symbolic link): `O_CREAT | O_EXCL`, which never follows a link.
pub async fn create_new(path: &Path) -> std::io::Result<tokio::fs::File> {
    tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .await
}

/// Gives the finished file `partial` (created by [`create_new`]) its final
/// name `path`.
///
/// Without `replace`, anything at `path` (even a dangling link) is left as
/// it is and the error is [`ErrorKind::AlreadyExists`]; `partial` stays. With
/// `replace`, only a regular file is replaced (atomically, by a rename); a
/// link, a directory or a device at `path` is refused the same way, so
/// that nothing is ever written through a link a third party planted.
pub async fn place(partial: &Path, path: &Path, replace: bool) -> std::io::Result<()> {
    if replace {
        match tokio::fs::symlink_metadata(path).await {
            Ok(existing) if !existing.file_type().is_file() => {
                return Err(std::io::Error::new(
                    ErrorKind::AlreadyExists,
                    "is not a regular file (a symbolic link, a directory or a device), so it \
                     is never replaced: remove it by hand",
                ));
            }
            Ok(_) => {}
            Err(error) if error.kind() == ErrorKind::NotFound => {}
            Err(error) => return Err(error),
        }
        return tokio::fs::rename(partial, path).await;
    }
    match tokio::fs::hard_link(partial, path).await {
        Ok(()) => {
            // `path` now holds the file; the temporary name goes.
            let _ = tokio::fs::remove_file(partial).await;
            Ok(())
        }
        Err(error) if error.kind() == ErrorKind::AlreadyExists => Err(error),
        // No hard links on this file system: check, then rename (a file
        // created in between would be replaced: the one race left).
        Err(_) => {
            vacant(path).await?;
            tokio::fs::rename(partial, path).await
        }
    }
}

/// Fails with [`ErrorKind::AlreadyExists`] if anything (even a dangling
/// symbolic link) is at `path`.
pub async fn vacant(path: &Path) -> std::io::Result<()> {
    match tokio::fs::symlink_metadata(path).await {
        Ok(_) => Err(std::io::Error::from(ErrorKind::AlreadyExists)),
        Err(error) if error.kind() == ErrorKind::NotFound => Ok(()),
        Err(error) => Err(error),
    }
}

/// Reads all of `path` (a file, a pipe, a device), but never more than
/// `cap` bytes: past it, the read stops and the error says so
/// ([`ErrorKind::InvalidData`], "larger than `cap` bytes"). It blocks: it is
/// meant for the files a command is given, read before any work starts.
pub fn read_capped(path: &Path, cap: u64) -> std::io::Result<Vec<u8>> {
    let file = std::fs::File::open(path)?;
    let mut bytes = Vec::new();
    file.take(cap.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > cap {
        return Err(std::io::Error::new(
            ErrorKind::InvalidData,
            format!("larger than {cap} bytes"),
        ));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_stop_at_the_cap_on_devices_and_files() {
        let error = read_capped(Path::new("/dev/zero"), 1024).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidData);
        assert!(
            error.to_string().contains("larger than 1024 bytes"),
            "{error}"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"12345").unwrap();
        assert_eq!(read_capped(&path, 5).unwrap(), b"12345");
        assert!(read_capped(&path, 4).is_err());
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn placing_replaces_only_a_regular_file_and_never_writes_through_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        let link = dir.path().join("song.mp3");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        let partial = dir.path().join(".part");
        drop(create_new(&partial).await.unwrap());
        std::fs::write(&partial, b"new").unwrap();
        for replace in [false, true] {
            let error = place(&partial, &link, replace).await.unwrap_err();
            assert_eq!(error.kind(), ErrorKind::AlreadyExists, "{replace}");
            assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
            assert!(
                std::fs::symlink_metadata(&link)
                    .unwrap()
                    .file_type()
                    .is_symlink()
            );
        }
        // The temporary name is never opened through a link either.
        assert!(create_new(&link).await.is_err());
        let regular = dir.path().join("old.mp3");
        std::fs::write(&regular, b"old").unwrap();
        assert!(place(&partial, &regular, false).await.is_err());
        place(&partial, &regular, true).await.unwrap();
        assert_eq!(std::fs::read(&regular).unwrap(), b"new");
        assert!(!partial.exists());
    }
}
