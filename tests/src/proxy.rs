//! A TCP proxy a test can cut: one process loses its connection to a shared service (say, one
//! SFU node to NATS) while everything else keeps it.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub struct CuttableProxy {
    /// Where clients connect instead of the upstream.
    pub addr: SocketAddr,
    cut: Arc<watch::Sender<bool>>,
    accepting: JoinHandle<()>,
}

impl CuttableProxy {
    /// Forwards connections on a free loopback port to `upstream` (`host:port`).
    pub async fn start(upstream: &str) -> Result<Self> {
        let upstream: SocketAddr =
            tokio::net::lookup_host(upstream).await?.next().with_context(|| format!("no address for {upstream}"))?;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let cut = Arc::new(watch::Sender::new(false));
        let accepting = tokio::spawn({
            let cut = Arc::clone(&cut);
            async move {
                while let Ok((client, _)) = listener.accept().await {
                    // While cut, a new connection is closed at once, as a dead link would be.
                    if *cut.borrow() {
                        continue;
                    }
                    tokio::spawn(forward(client, upstream, cut.subscribe()));
                }
            }
        });
        Ok(Self { addr, cut, accepting })
    }

    /// Closes every connection through the proxy and refuses new ones.
    pub fn cut(&self) {
        self.cut.send_replace(true);
    }

    /// Lets connections through again.
    pub fn restore(&self) {
        self.cut.send_replace(false);
    }
}

impl Drop for CuttableProxy {
    fn drop(&mut self) {
        self.cut.send_replace(true);
        self.accepting.abort();
    }
}

async fn forward(mut client: TcpStream, upstream: SocketAddr, mut cut: watch::Receiver<bool>) {
    let Ok(mut server) = TcpStream::connect(upstream).await else { return };
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
        _ = cut.wait_for(|cut| *cut) => {}
    }
}
