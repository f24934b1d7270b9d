//! `parley-bench-media [API_BASE_URL]`: uploads and downloads one large file (1 GiB by default,
//! `BENCH_MEDIA_BYTES`) through a running api and prints throughput beside a plain copy of the
//! same file on the same disk, and the api's resident memory before and at its peak during each
//! transfer (sampled every 20 ms from `/proc/<BENCH_API_PID>/status`).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use parley_tests::{read, unique_email, PASSWORD};
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BLOCK: usize = 8 * 1024 * 1024;

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

/// Samples the process's RSS until stopped; returns the highest seen (KiB).
fn sample_peak(pid: u32, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<u64> {
    let peak = Arc::new(AtomicU64::new(0));
    tokio::spawn(async move {
        while !stop.load(Ordering::Relaxed) {
            peak.fetch_max(rss_kib(pid), Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        peak.load(Ordering::Relaxed)
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes `size` bytes of a cheap pseudo-random pattern; returns their SHA-256.
async fn make_file(path: &PathBuf, size: u64) -> Result<String> {
    let mut file = tokio::fs::File::create(path).await?;
    let mut hasher = Sha256::new();
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut written = 0u64;
    let mut block = vec![0u8; BLOCK];
    while written < size {
        for word in block.chunks_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes()[..word.len()]);
        }
        let n = ((size - written) as usize).min(BLOCK);
        hasher.update(&block[..n]);
        file.write_all(&block[..n]).await?;
        written += n as u64;
    }
    file.sync_all().await?;
    Ok(hex(&hasher.finalize()))
}

async fn file_sha256(path: &PathBuf) -> Result<String> {
    let mut file = tokio::fs::File::open(path).await?;
    let mut hasher = Sha256::new();
    let mut block = vec![0u8; BLOCK];
    loop {
        let n = file.read(&mut block).await?;
        if n == 0 {
            return Ok(hex(&hasher.finalize()));
        }
        hasher.update(&block[..n]);
    }
}

fn file_stream(file: tokio::fs::File) -> impl futures::Stream<Item = std::io::Result<Bytes>> {
    futures::stream::unfold(file, |mut file| async move {
        let mut buffer = BytesMut::with_capacity(1024 * 1024);
        match file.read_buf(&mut buffer).await {
            Ok(0) => None,
            Ok(_) => Some((Ok(buffer.freeze()), file)),
            Err(error) => Some((Err(error), file)),
        }
    })
}

fn mib_per_s(bytes: u64, elapsed: Duration) -> f64 {
    bytes as f64 / 1024.0 / 1024.0 / elapsed.as_secs_f64()
}

#[tokio::main]
async fn main() -> Result<()> {
    let base = std::env::args().nth(1).unwrap_or_else(|| "http://127.0.0.1:8080".into());
    let size: u64 = std::env::var("BENCH_MEDIA_BYTES").ok().and_then(|v| v.parse().ok()).unwrap_or(1 << 30);
    let pid: u32 = std::env::var("BENCH_API_PID").ok().and_then(|v| v.parse().ok()).context("BENCH_API_PID")?;
    let dir = PathBuf::from(std::env::var("BENCH_MEDIA_DIR").unwrap_or_else(|_| ".parley/bench/tmp".into()));
    tokio::fs::create_dir_all(&dir).await?;
    let (source, copy, downloaded) = (dir.join("source.bin"), dir.join("copy.bin"), dir.join("downloaded.bin"));
    let http = reqwest::Client::new();
    println!("parley-bench-media against {base}: {} MiB", size >> 20);

    let body = json!({"name": "Bench", "email": unique_email("media"), "password": PASSWORD});
    let (status, user) = read(http.post(format!("{base}/auth/register")).json(&body).send().await?).await?;
    ensure!(status == 201, "register: {status} {user}");
    let token = user["access_token"].as_str().unwrap_or_default().to_owned();
    let sha256 = make_file(&source, size).await?;

    // The disk's own speed: copy the file through memory in 8 MiB blocks, flushed. (`cp` may use
    // copy_file_range, which some file systems turn into a metadata operation: no bytes move.)
    let started = Instant::now();
    {
        let mut from = tokio::fs::File::open(&source).await?;
        let mut to = tokio::fs::File::create(&copy).await?;
        let mut block = vec![0u8; BLOCK];
        loop {
            let n = from.read(&mut block).await?;
            if n == 0 {
                break;
            }
            to.write_all(&block[..n]).await?;
        }
        to.sync_all().await?;
    }
    let copy_elapsed = started.elapsed();
    tokio::fs::remove_file(&copy).await?;

    let baseline = rss_kib(pid);
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = sample_peak(pid, Arc::clone(&stop));
    let started = Instant::now();
    let file = tokio::fs::File::open(&source).await?;
    let response = http
        .post(format!("{base}/media"))
        .bearer_auth(&token)
        .header("content-type", "video/mp4")
        .header("content-length", size)
        .body(reqwest::Body::wrap_stream(file_stream(file)))
        .send()
        .await?;
    let (status, media) = read(response).await?;
    let upload_elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let upload_peak = sampler.await?;
    ensure!(status == 201, "upload: {status} {media}");
    ensure!(media["sha256"] == sha256.as_str(), "checksum differs: {media}");

    let stop = Arc::new(AtomicBool::new(false));
    let sampler = sample_peak(pid, Arc::clone(&stop));
    let started = Instant::now();
    let id = media["id"].as_str().unwrap_or_default();
    let response = http.get(format!("{base}/media/{id}")).bearer_auth(&token).send().await?;
    ensure!(response.status().as_u16() == 200, "download: {}", response.status());
    // Written in big blocks: tokio's file writes hop to a blocking thread each.
    let mut out = tokio::io::BufWriter::with_capacity(BLOCK, tokio::fs::File::create(&downloaded).await?);
    let mut stream = response.bytes_stream();
    let mut received = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        received += chunk.len() as u64;
        out.write_all(&chunk).await?;
    }
    out.flush().await?;
    out.get_ref().sync_all().await?;
    let download_elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let download_peak = sampler.await?;
    // Checked after the clock stopped: the client's hashing is not the server's throughput.
    ensure!(received == size && file_sha256(&downloaded).await? == sha256, "downloaded bytes differ");
    for path in [&source, &downloaded] {
        tokio::fs::remove_file(path).await?;
    }

    let copy_rate = mib_per_s(size, copy_elapsed);
    println!();
    println!("| measure | value |");
    println!("|---|---|");
    println!(
        "| copy of the file on the same disk (8 MiB blocks, flushed) | {copy_rate:.0} MiB/s ({:.1} s) |",
        copy_elapsed.as_secs_f64()
    );
    for (name, elapsed) in
        [("upload (POST /media, streamed)", upload_elapsed), ("download (GET /media/{id})", download_elapsed)]
    {
        let rate = mib_per_s(size, elapsed);
        println!(
            "| {name} | {rate:.0} MiB/s ({:.1} s), {:.0} % of the copy |",
            elapsed.as_secs_f64(),
            rate / copy_rate * 100.0
        );
    }
    println!("| api RSS before | {:.1} MiB |", baseline as f64 / 1024.0);
    for (name, peak) in [("upload", upload_peak), ("download", download_peak)] {
        println!(
            "| api RSS peak during {name} | {:.1} MiB (growth {:.1} MiB) |",
            peak as f64 / 1024.0,
            peak.saturating_sub(baseline) as f64 / 1024.0
        );
    }
    Ok(())
}
