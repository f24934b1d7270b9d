//! Attachments, streamed both ways with a fixed buffer: a file of any size never sits in memory.
//!
//! Upload: a task reads the file in chunks, encrypts each in place (AES-256-CTR, SHA-256 over the
//! ciphertext) and hands it through a small bounded channel to the request body. Download: the ciphertext
//! streams to a temporary file while being hashed; only when size and hash match does a second pass decrypt
//! that file into the output (written beside it and renamed into place).

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use futures::{Stream, StreamExt};
use parley_client_core::{AttachmentDecryptor, AttachmentEncryptor, AttachmentInfo, AttachmentVerifier};
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::api::Api;
use crate::error::{CliError, Result};

/// Bytes read, encrypted and sent at a time.
const CHUNK: usize = 256 * 1024;
/// Chunks in flight between the reader and the request body.
const IN_FLIGHT: usize = 4;

/// The receiving end of the chunk channel as a request body stream.
struct ChunkStream(mpsc::Receiver<std::io::Result<Vec<u8>>>);

impl Stream for ChunkStream {
    type Item = std::io::Result<Vec<u8>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_recv(cx)
    }
}

/// A media type from the file's extension (only used as a label inside the encrypted message).
pub(crate) fn guess_content_type(path: &Path) -> &'static str {
    let extension = path.extension().and_then(|extension| extension.to_str()).unwrap_or("").to_ascii_lowercase();
    match extension.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "heic" => "image/heic",
        "mp4" | "m4v" => "video/mp4",
        "mov" => "video/quicktime",
        "webm" => "video/webm",
        "mkv" => "video/x-matroska",
        "mp3" => "audio/mpeg",
        "ogg" | "opus" => "audio/ogg",
        "pdf" => "application/pdf",
        "txt" | "md" => "text/plain",
        _ => "application/octet-stream",
    }
}

/// The name to put in an attachment, and to save a download under: the path's last component.
pub(crate) fn file_name(path: &Path) -> String {
    path.file_name().and_then(|name| name.to_str()).unwrap_or("file").to_owned()
}

async fn read_full(file: &mut tokio::fs::File, buffer: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        let read = file.read(&mut buffer[filled..]).await?;
        if read == 0 {
            break;
        }
        filled += read;
    }
    Ok(filled)
}

/// Encrypts `path` while uploading it; returns the attachment info for the message (without its caption).
pub(crate) async fn upload_encrypted(api: &Api, path: &Path, content_type: &str) -> Result<AttachmentInfo> {
    let mut file = tokio::fs::File::open(path).await.map_err(CliError::io("open", path))?;
    let size = file.metadata().await.map_err(CliError::io("inspect", path))?.len();
    let mut encryptor = AttachmentEncryptor::new()?;
    let (sender, receiver) = mpsc::channel(IN_FLIGHT);
    let reader_path = path.to_owned();
    let reader = tokio::spawn(async move {
        let mut sent = 0u64;
        loop {
            let mut chunk = vec![0u8; CHUNK];
            let read = match read_full(&mut file, &mut chunk).await {
                Ok(read) => read,
                Err(error) => {
                    let message = error.to_string();
                    let _ = sender.send(Err(error)).await;
                    return Err(CliError::Io {
                        action: "read",
                        path: reader_path,
                        source: std::io::Error::other(message),
                    });
                }
            };
            if read == 0 {
                break;
            }
            chunk.truncate(read);
            encryptor.update(&mut chunk)?;
            sent += read as u64;
            if sender.send(Ok(chunk)).await.is_err() {
                return Err(CliError::Transport("the upload stopped before the whole file was sent".into()));
            }
        }
        Ok((encryptor.finish(), sent))
    });
    let uploaded = api.upload_media(ChunkStream(receiver), "application/octet-stream").await;
    let encrypted = reader.await.map_err(|error| CliError::Transport(format!("file reader: {error}")))?;
    let media_id = uploaded?;
    let (keys, sent) = encrypted?;
    if sent != size {
        return Err(CliError::Usage(format!("{} changed size while it was being sent", path.display())));
    }
    Ok(keys.into_info(media_id, content_type, &file_name(path)))
}

/// Uploads a file as it is (avatars: public profile data, not encrypted); returns the media id.
pub(crate) async fn upload_plain(api: &Api, path: &Path, content_type: &str) -> Result<Uuid> {
    let mut file = tokio::fs::File::open(path).await.map_err(CliError::io("open", path))?;
    let (sender, receiver) = mpsc::channel(IN_FLIGHT);
    let reader = tokio::spawn(async move {
        loop {
            let mut chunk = vec![0u8; CHUNK];
            match read_full(&mut file, &mut chunk).await {
                Ok(0) => break,
                Ok(read) => {
                    chunk.truncate(read);
                    if sender.send(Ok(chunk)).await.is_err() {
                        break;
                    }
                }
                Err(error) => {
                    let _ = sender.send(Err(error)).await;
                    break;
                }
            }
        }
    });
    let uploaded = api.upload_media(ChunkStream(receiver), content_type).await;
    reader.await.map_err(|error| CliError::Transport(format!("file reader: {error}")))?;
    uploaded
}

fn private_file(path: &Path) -> Result<File> {
    OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map_err(CliError::io("create", path))
}

/// Removes a temporary file when dropped (unless disarmed).
struct TempFile(Option<PathBuf>);

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = fs::remove_file(path);
        }
    }
}

/// Downloads an attachment to `out`: ciphertext to a temporary file while hashing, hash checked, then
/// decrypted into `out` in a second pass. Nothing is left at `out` when anything fails.
pub(crate) async fn download_decrypted(api: &Api, info: &AttachmentInfo, out: &Path) -> Result<u64> {
    if out.exists() {
        return Err(CliError::Usage(format!("{} already exists: choose another --out", out.display())));
    }
    let dir = match out.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
        _ => PathBuf::from("."),
    };
    let tag = Uuid::new_v4().simple().to_string();
    let cipher_path = dir.join(format!(".parley-download-{tag}.enc"));
    let plain_path = dir.join(format!(".parley-download-{tag}.part"));

    // Pass 1: ciphertext to disk, hashed on the way.
    let cipher_guard = TempFile(Some(cipher_path.clone()));
    let mut verifier = AttachmentVerifier::new(info)?;
    {
        let mut cipher_file = std::io::BufWriter::new(private_file(&cipher_path)?);
        let mut stream = api.download_media(info.media_id).await?;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|error| CliError::Transport(format!("download: {error}")))?;
            verifier.update(&chunk);
            cipher_file.write_all(&chunk).map_err(CliError::io("write", &cipher_path))?;
        }
        cipher_file.into_inner().map_err(|error| CliError::io("write", &cipher_path)(error.into_error()))?;
    }
    verifier.finish().map_err(|error| CliError::AttachmentMismatch(error.to_string()))?;

    // Pass 2: decrypt the verified ciphertext.
    let mut plain_guard = TempFile(Some(plain_path.clone()));
    let mut decryptor = AttachmentDecryptor::new(info)?;
    let mut written = 0u64;
    {
        let mut source = File::open(&cipher_path).map_err(CliError::io("open", &cipher_path))?;
        let mut target = private_file(&plain_path)?;
        let mut buffer = vec![0u8; CHUNK];
        loop {
            let read = source.read(&mut buffer).map_err(CliError::io("read", &cipher_path))?;
            if read == 0 {
                break;
            }
            let chunk = &mut buffer[..read];
            decryptor.update(chunk)?;
            target.write_all(chunk).map_err(CliError::io("write", &plain_path))?;
            written += read as u64;
        }
        target.sync_all().map_err(CliError::io("sync", &plain_path))?;
    }
    // The file on disk must still be what was verified.
    decryptor.finish().map_err(|error| CliError::AttachmentMismatch(error.to_string()))?;
    fs::rename(&plain_path, out).map_err(CliError::io("write", out))?;
    plain_guard.0 = None;
    drop(cipher_guard);
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_and_names() {
        assert_eq!(guess_content_type(Path::new("a/photo.JPG")), "image/jpeg");
        assert_eq!(guess_content_type(Path::new("clip.mp4")), "video/mp4");
        assert_eq!(guess_content_type(Path::new("noext")), "application/octet-stream");
        assert_eq!(file_name(Path::new("/tmp/x/photo.png")), "photo.png");
    }
}
