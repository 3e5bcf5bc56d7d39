//! A round-robin TCP proxy standing in for a load balancer: each accepted connection goes to
//! the next backend in turn. With clients that open a connection per request, consecutive
//! requests alternate between instances.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use tokio::net::{TcpListener, TcpStream};

pub struct RoundRobin {
    pub port: u16,
    /// Connections forwarded to each backend, in `backends` order.
    pub counts: Arc<Vec<AtomicUsize>>,
    backends: Arc<OnceLock<Vec<u16>>>,
}

impl RoundRobin {
    /// Listens on a free loopback port and forwards to `backends` (ports on 127.0.0.1).
    pub async fn start(backends: Vec<u16>) -> anyhow::Result<RoundRobin> {
        let lb = RoundRobin::listen(backends.len()).await?;
        lb.route_to(backends)?;
        Ok(lb)
    }

    /// Listens on `127.0.0.1:0` for `n` backends named later with [`RoundRobin::route_to`]
    /// (instances that need the proxy's address in their config, bound to port 0 themselves);
    /// connections before that are closed.
    pub async fn listen(n: usize) -> anyhow::Result<RoundRobin> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let counts: Arc<Vec<AtomicUsize>> = Arc::new((0..n).map(|_| AtomicUsize::new(0)).collect());
        let backends: Arc<OnceLock<Vec<u16>>> = Arc::default();
        let (seen, routes) = (counts.clone(), backends.clone());
        tokio::spawn(async move {
            let next = AtomicUsize::new(0);
            while let Ok((mut inbound, _)) = listener.accept().await {
                let Some(backends) = routes.get().filter(|b| !b.is_empty()) else { continue };
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
        Ok(RoundRobin { port, counts, backends })
    }

    /// The backends' ports, once (as many as [`RoundRobin::listen`] was told).
    pub fn route_to(&self, backends: Vec<u16>) -> anyhow::Result<()> {
        anyhow::ensure!(backends.len() == self.counts.len(), "{} backends for {} slots", backends.len(), self.counts.len());
        self.backends.set(backends).map_err(|_| anyhow::anyhow!("the backends are already set"))
    }

    pub fn count(&self, backend: usize) -> usize {
        self.counts[backend].load(Ordering::Relaxed)
    }
}
