//! Resumable uploads (`PATCH /media/uploads/{id}` with `Upload-Offset`, then `complete`) on the
//! api's local media storage, and the `Range` of the download of what they made.
//!
//! The input is steps: each a field with the `Upload-Offset` header, a field with the chunk's
//! body, and a byte of flags (bit 0: the body breaks off after its bytes, as a dropped
//! connection's does; bit 1: it arrives in two parts). Each step is taken as `UploadsApi::append`
//! takes it: the header read as poem-openapi reads a `Header<u64>`, refused unless it is the
//! upload's current offset (the size of its chunks), the chunk stored under its zero-padded
//! offset with the room left under the size cap. The last field is a `Range` header: the
//! completed media, and the range of it that is served, must be exactly the bytes accepted.

#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use bytes::Bytes;
use futures::TryStreamExt;
use libfuzzer_sys::fuzz_target;
use parley_api::auth::tokens::hex;
use parley_api::media::routes::requested_range;
use parley_api::media::storage::{MediaStorage, StorageConfig, StorageError};
use parley_fuzz::Fields;
use poem_openapi::types::ParseFromParameter;
use sha2::{Digest, Sha256};

/// The media size cap in these uploads (`PARLEY_MEDIA_MAX_BYTES`): small, so that inputs reach it.
const MAX_BYTES: u64 = 1024;
/// Steps one input may take (each writes a file).
const MAX_STEPS: usize = 8;

/// Where the storage keeps its files: a directory of this process under the temporary one.
fn root() -> &'static PathBuf {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| std::env::temp_dir().join(format!("parley-fuzz-media-{}", std::process::id())))
}

fn storage() -> &'static MediaStorage {
    static STORAGE: OnceLock<MediaStorage> = OnceLock::new();
    STORAGE.get_or_init(|| {
        MediaStorage::open(&StorageConfig::Local { root: root().clone() }, None)
            .unwrap_or_else(|e| panic!("local media storage under the temporary directory: {e}"))
    })
}

/// The chunk body as the handler's stream gives it.
fn body(bytes: &[u8], flags: u8) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Unpin {
    let cut = if flags & 2 == 2 { bytes.len() / 2 } else { bytes.len() };
    let mut parts: Vec<Result<Bytes, std::io::Error>> = [&bytes[..cut], &bytes[cut..]]
        .into_iter()
        .filter(|p| !p.is_empty())
        .map(|p| Ok(Bytes::copy_from_slice(p)))
        .collect();
    if flags & 1 == 1 {
        parts.push(Err(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "the client went away")));
    }
    futures::stream::iter(parts)
}

async fn upload(fields: &mut Fields<'_>, storage: &MediaStorage) {
    // A fresh upload per input: its chunks share nothing with another input's.
    let upload_id = uuid::Uuid::new_v4();
    let prefix = format!("uploads/{upload_id}/chunks");
    let mut accepted: Vec<u8> = Vec::new();
    let mut steps = 0;
    while !fields.is_empty() && steps < MAX_STEPS {
        steps += 1;
        let (header, bytes, flags) = (fields.field(), fields.field(), fields.byte());
        let Ok(header) = std::str::from_utf8(header) else { continue };
        let Ok(offset) = u64::parse_from_parameters([header]) else { continue };
        let current = storage.chunks_size(&prefix).await.unwrap_or_else(|e| panic!("chunks_size: {e}"));
        assert_eq!(current, accepted.len() as u64, "the offset is not the bytes accepted");
        if offset != current {
            continue;
        }
        let room = MAX_BYTES.saturating_sub(current);
        let key = format!("{prefix}/{current:020}");
        match storage.put_received(&key, body(bytes, flags), room).await {
            Ok(stored) => {
                assert_eq!(stored, bytes.len() as u64, "a chunk was kept in part");
                accepted.extend_from_slice(bytes);
            }
            Err(StorageError::TooLarge { .. }) => assert!(bytes.len() as u64 > room, "refused a chunk that fits"),
            Err(other) => panic!("storing a chunk: {other}"),
        }
    }
    let range = fields.field();
    let media = format!("media/{}", uuid::Uuid::new_v4());
    match storage.concatenate(&prefix, &media, MAX_BYTES).await {
        Ok(stored) => {
            assert_eq!(stored.size, accepted.len() as u64, "the media is not the chunks");
            assert_eq!(stored.sha256, hex(&Sha256::digest(&accepted)), "the media's bytes differ from the chunks'");
            let range = std::str::from_utf8(range).ok().and_then(|h| requested_range(Some(h), stored.size).ok());
            if let Some(Some(range)) = range {
                let wanted = usize::try_from(range.start).unwrap_or(usize::MAX)
                    ..usize::try_from(range.end).unwrap_or(usize::MAX);
                let served: Vec<Bytes> = storage
                    .get_stream(&media, Some(range))
                    .await
                    .unwrap_or_else(|e| panic!("a range of the media: {e}"))
                    .try_collect()
                    .await
                    .unwrap_or_else(|e| panic!("reading a range of the media: {e}"));
                assert_eq!(served.concat(), accepted[wanted], "the range served is not the range asked");
            }
        }
        // No chunk: nothing to complete (the api then records an empty media, which storage
        // refuses as an object store would).
        Err(_) if accepted.is_empty() => {}
        Err(other) => panic!("completing an upload of {} bytes: {other}", accepted.len()),
    }
    // Removing objects leaves their directories: millions of inputs must not leave millions.
    let _ = std::fs::remove_dir_all(root().join("uploads").join(upload_id.to_string()));
    let _ = storage.delete(&media).await;
}

fuzz_target!(|data: &[u8]| {
    let storage = storage();
    parley_fuzz::runtime().block_on(upload(&mut Fields::new(data), storage));
});
