//! A round-robin TCP proxy standing in for a load balancer: each accepted connection goes to
//! the next backend in turn. With clients that open a connection per request, consecutive
//! requests alternate between instances.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::net::{TcpListener, TcpStream};

pub struct RoundRobin {
    pub port: u16,
    /// Connections forwarded to each backend, in `backends` order.
    pub counts: Arc<Vec<AtomicUsize>>,
}

impl RoundRobin {
    /// Listens on a free loopback port and forwards to `backends` (ports on 127.0.0.1).
    pub async fn start(backends: Vec<u16>) -> anyhow::Result<RoundRobin> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let counts: Arc<Vec<AtomicUsize>> = Arc::new(backends.iter().map(|_| AtomicUsize::new(0)).collect());
        let seen = counts.clone();
        tokio::spawn(async move {
            let next = AtomicUsize::new(0);
            while let Ok((mut inbound, _)) = listener.accept().await {
                let i = next.fetch_add(1, Ordering::Relaxed) % backends.len();
                let backend = backends[i];
                seen[i].fetch_add(1, Ordering::Relaxed);
                tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(("127.0.0.1", backend)).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Ok(RoundRobin { port, counts })
    }

    pub fn count(&self, backend: usize) -> usize {
        self.counts[backend].load(Ordering::Relaxed)
    }
}
