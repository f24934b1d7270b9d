//! Where media bytes live: an `object_store` backend (a directory under the data directory by
//! default, any S3-compatible bucket when configured). Uploads stream through in parts, hashed on
//! the way; nothing holds a whole file in memory.

use std::path::Path as FsPath;
use std::sync::Arc;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{GetOptions, GetRange, GetResultPayload, ObjectStore, ObjectStoreExt, WriteMultipart};
use sha2::{Digest, Sha256};

use crate::auth::tokens::hex;

/// Part size for multipart uploads (S3's minimum is 5 MiB); also what one upload buffers.
const PART_BYTES: usize = 8 * 1024 * 1024;
/// Parts in flight per upload.
const PARTS_IN_FLIGHT: usize = 2;

#[derive(Debug, Clone)]
pub enum StorageConfig {
    Local {
        root: std::path::PathBuf,
    },
    S3 {
        endpoint: Option<String>,
        bucket: String,
        region: String,
        access_key: String,
        secret_key: crate::config::Secret,
        path_style: bool,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("object storage: {0}")]
    Store(#[from] object_store::Error),
    #[error("the upload is larger than {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("the upload was interrupted: {0}")]
    Interrupted(String),
    #[error("could not prepare the media directory: {0}")]
    Io(#[from] std::io::Error),
}

/// What an upload stored.
pub struct Stored {
    pub size: u64,
    pub sha256: String,
}

#[derive(Clone)]
pub struct MediaStorage {
    store: Arc<dyn ObjectStore>,
    /// For the local backend: where keys live on disk, to flush finished uploads (object_store
    /// renames them into place without an fsync; the upload's event must not outlive its bytes).
    local_root: Option<std::path::PathBuf>,
}

impl MediaStorage {
    /// `prefix`, when given, is put before every key (several deployments or test runs sharing
    /// one bucket keep apart).
    pub fn open(config: &StorageConfig, prefix: Option<&str>) -> Result<Self, StorageError> {
        let store: Arc<dyn ObjectStore> = match config {
            StorageConfig::Local { root } => {
                std::fs::create_dir_all(root)?;
                Arc::new(LocalFileSystem::new_with_prefix(FsPath::new(root))?)
            }
            StorageConfig::S3 { endpoint, bucket, region, access_key, secret_key, path_style } => {
                let mut builder = AmazonS3Builder::new()
                    .with_bucket_name(bucket)
                    .with_region(region)
                    .with_access_key_id(access_key)
                    .with_secret_access_key(secret_key.expose())
                    .with_virtual_hosted_style_request(!path_style);
                if let Some(endpoint) = endpoint {
                    builder = builder.with_endpoint(endpoint).with_allow_http(endpoint.starts_with("http://"));
                }
                Arc::new(builder.build()?)
            }
        };
        let store: Arc<dyn ObjectStore> = match prefix {
            Some(prefix) => Arc::new(PrefixStore::new(store, prefix)),
            None => store,
        };
        let local_root = match config {
            StorageConfig::Local { root } => Some(match prefix {
                Some(prefix) => root.join(prefix),
                None => root.clone(),
            }),
            StorageConfig::S3 { .. } => None,
        };
        Ok(Self { store, local_root })
    }

    /// Streams `body` to `key`, at most `limit` bytes; on any failure (too large, interrupted,
    /// storage error) the partial object is aborted so nothing half-stored stays behind.
    pub async fn put_stream<S, E>(&self, key: &str, body: S, limit: u64) -> Result<Stored, StorageError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let upload = self.store.put_multipart(&Path::from(key)).await?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_BYTES);
        match copy_hashed(body, &mut writer, limit).await {
            Ok(stored) => {
                writer.finish().await?;
                self.flush_local(key).await?;
                Ok(stored)
            }
            Err(error) => {
                if let Err(abort) = writer.abort().await {
                    tracing::warn!(%abort, key, "could not abort a failed upload");
                }
                Err(error)
            }
        }
    }

    /// Makes a finished local object durable (no-op for S3, where a completed upload is).
    async fn flush_local(&self, key: &str) -> Result<(), StorageError> {
        let Some(root) = &self.local_root else { return Ok(()) };
        let path = root.join(key);
        tokio::task::spawn_blocking(move || std::fs::File::open(path)?.sync_all())
            .await
            .map_err(std::io::Error::other)??;
        Ok(())
    }

    /// The object's bytes in `range` (all of them for `None`), as a stream.
    pub async fn get_stream(
        &self,
        key: &str,
        range: Option<std::ops::Range<u64>>,
    ) -> Result<impl Stream<Item = Result<Bytes, object_store::Error>>, StorageError> {
        let options = GetOptions { range: range.map(GetRange::Bounded), ..Default::default() };
        let result = self.store.get_opts(&Path::from(key), options).await?;
        Ok(match result.payload {
            // object_store reads local files 8 KiB per blocking call; a downloaded video goes
            // several times faster read in big blocks.
            GetResultPayload::File(file, _) => read_file_range(file, result.range).boxed(),
            GetResultPayload::Stream(stream) => stream,
        })
    }

    pub async fn delete(&self, key: &str) -> Result<(), StorageError> {
        self.remove(&Path::from(key)).await
    }

    /// Deletes an object; one already gone counts as deleted.
    async fn remove(&self, path: &Path) -> Result<(), StorageError> {
        match self.store.delete(path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(error) => Err(error.into()),
        }
    }

    /// A small object (an upload session's record) in full, if it exists.
    pub async fn get_small(&self, key: &str) -> Result<Option<Bytes>, StorageError> {
        match self.store.get(&Path::from(key)).await {
            Ok(result) => Ok(Some(result.bytes().await?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(error) => Err(error.into()),
        }
    }

    pub async fn put_small(&self, key: &str, bytes: Vec<u8>) -> Result<(), StorageError> {
        self.store.put(&Path::from(key), bytes.into()).await?;
        Ok(())
    }

    /// The objects under `prefix`, in key order, with their sizes.
    async fn listed(&self, prefix: &str) -> Result<Vec<(Path, u64)>, StorageError> {
        let mut objects: Vec<(Path, u64)> = self
            .store
            .list(Some(&Path::from(prefix)))
            .map(|meta| meta.map(|m| (m.location, m.size)))
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<_, _>>()?;
        objects.sort_by(|a, b| a.0.as_ref().cmp(b.0.as_ref()));
        Ok(objects)
    }

    /// Total size of the objects under `prefix` (an upload's chunks so far).
    pub async fn chunks_size(&self, prefix: &str) -> Result<u64, StorageError> {
        Ok(self.listed(prefix).await?.iter().map(|(_, size)| size).sum())
    }

    /// Stores what arrives of `body` at `key`, at most `limit` bytes. Unlike `put_stream`, a
    /// body that breaks off keeps what arrived (a resumable upload continues from there);
    /// returns the bytes stored.
    pub async fn put_received<S, E>(&self, key: &str, body: S, limit: u64) -> Result<u64, StorageError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let upload = self.store.put_multipart(&Path::from(key)).await?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_BYTES);
        let mut body = body;
        let mut size: u64 = 0;
        let mut outcome = Ok(());
        while let Some(chunk) = body.next().await {
            match chunk {
                Ok(chunk) => {
                    size += chunk.len() as u64;
                    if size > limit {
                        outcome = Err(StorageError::TooLarge { limit });
                        break;
                    }
                    writer.wait_for_capacity(PARTS_IN_FLIGHT).await?;
                    writer.put(chunk);
                }
                Err(error) => {
                    tracing::info!(%error, key, received = size, "chunk broke off; keeping what arrived");
                    break;
                }
            }
        }
        match outcome {
            Ok(()) if size > 0 => {
                writer.finish().await?;
                Ok(size)
            }
            other => {
                writer.abort().await?;
                other.map(|()| 0)
            }
        }
    }

    /// Streams the objects under `prefix`, in key order, into one object at `key`, hashing on
    /// the way; at most `limit` bytes in all.
    pub async fn concatenate(&self, prefix: &str, key: &str, limit: u64) -> Result<Stored, StorageError> {
        let chunks = self.listed(prefix).await?;
        let total: u64 = chunks.iter().map(|(_, size)| size).sum();
        if total > limit {
            return Err(StorageError::TooLarge { limit });
        }
        let store = Arc::clone(&self.store);
        let body = futures::stream::iter(chunks)
            .then(move |(path, _)| {
                let store = Arc::clone(&store);
                async move { store.get(&path).await.map(|r| r.into_stream()) }
            })
            .map(|stream| match stream {
                Ok(stream) => stream.boxed(),
                Err(error) => futures::stream::once(async move { Err(error) }).boxed(),
            })
            .flatten()
            .boxed();
        self.put_stream(key, body, limit).await
    }

    /// Removes the objects under `prefix` last written before `cutoff` (abandoned upload
    /// sessions and their chunks); returns how many.
    pub async fn delete_older_than(
        &self,
        prefix: &str,
        cutoff: chrono::DateTime<chrono::Utc>,
    ) -> Result<usize, StorageError> {
        let stale: Vec<Path> = self
            .store
            .list(Some(&Path::from(prefix)))
            .filter_map(|meta| async move { meta.ok().filter(|m| m.last_modified < cutoff).map(|m| m.location) })
            .collect()
            .await;
        for path in &stale {
            self.remove(path).await?;
        }
        Ok(stale.len())
    }

    /// Removes every object under `prefix`.
    pub async fn delete_prefix(&self, prefix: &str) -> Result<(), StorageError> {
        for (path, _) in self.listed(prefix).await? {
            self.remove(&path).await?;
        }
        Ok(())
    }

    /// Whether an object exists (for tests and the reaper's checks).
    pub async fn exists(&self, key: &str) -> Result<bool, StorageError> {
        match self.store.head(&Path::from(key)).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(error) => Err(error.into()),
        }
    }
}

async fn copy_hashed<S, E>(mut body: S, writer: &mut WriteMultipart, limit: u64) -> Result<Stored, StorageError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let mut hasher = Sha256::new();
    let mut size: u64 = 0;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| StorageError::Interrupted(e.to_string()))?;
        size += chunk.len() as u64;
        if size > limit {
            return Err(StorageError::TooLarge { limit });
        }
        hasher.update(&chunk);
        writer.wait_for_capacity(PARTS_IN_FLIGHT).await?;
        writer.put(chunk);
    }
    Ok(Stored { size, sha256: hex(&hasher.finalize()) })
}

/// Bytes read from a local file per blocking call when streaming it out.
const FILE_READ_BYTES: usize = 1024 * 1024;

/// `range` of a local file as a stream of blocks read on the blocking pool.
fn read_file_range(
    file: std::fs::File,
    range: std::ops::Range<u64>,
) -> impl Stream<Item = Result<Bytes, object_store::Error>> {
    use std::io::{Read, Seek, SeekFrom};
    let io_error = |source: std::io::Error| object_store::Error::Generic { store: "media", source: Box::new(source) };
    futures::stream::try_unfold((Some(file), range.start), move |(file, at)| async move {
        let Some(mut file) = file else { return Ok(None) };
        if at >= range.end {
            return Ok(None);
        }
        let wanted = ((range.end - at) as usize).min(FILE_READ_BYTES);
        let (file, block) = tokio::task::spawn_blocking(move || -> std::io::Result<(std::fs::File, Vec<u8>)> {
            file.seek(SeekFrom::Start(at))?;
            let mut block = vec![0u8; wanted];
            file.read_exact(&mut block)?;
            Ok((file, block))
        })
        .await
        .map_err(|e| io_error(std::io::Error::other(e)))?
        .map_err(io_error)?;
        Ok(Some((Bytes::from(block), (Some(file), at + wanted as u64))))
    })
}
