//! A minimal HTTP/1.1 client for the load: one kept-alive TCP connection per worker, driven
//! with hyper's low-level connection API (no pool, no cookie jar, no redirects), so the load
//! generator spends little CPU per request.

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;

pub struct Response {
    pub status: u16,
    pub location: Option<String>,
    pub body: Bytes,
}

/// One connection to the server; reconnects after the server closes it.
pub struct Conn {
    addr: SocketAddr,
    host: String,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Conn {
    pub fn new(addr: SocketAddr, host: &str) -> Conn {
        Conn { addr, host: host.to_owned(), sender: None }
    }

    async fn connect(&self) -> anyhow::Result<SendRequest<Full<Bytes>>> {
        let stream = tokio::net::TcpStream::connect(self.addr).await.with_context(|| format!("connecting to {}", self.addr))?;
        stream.set_nodelay(true)?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(sender)
    }

    /// Sends one request and reads the whole answer. `headers` are (name, value) pairs.
    pub async fn send(
        &mut self,
        method: Method,
        path_and_query: &str,
        headers: &[(&str, &str)],
        body: Option<String>,
    ) -> anyhow::Result<Response> {
        let mut sender = match self.sender.take() {
            Some(s) if !s.is_closed() => s,
            _ => self.connect().await?,
        };
        let mut req = Request::builder().method(method).uri(path_and_query).header("host", &self.host);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(Full::new(body.map(Bytes::from).unwrap_or_default()))?;
        sender.ready().await?;
        let resp = sender.send_request(req).await?;
        let status = resp.status().as_u16();
        let location = resp.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let body = resp.into_body().collect().await?.to_bytes();
        self.sender = Some(sender);
        Ok(Response { status, location, body })
    }

    pub async fn get(&mut self, path: &str, headers: &[(&str, &str)]) -> anyhow::Result<Response> {
        self.send(Method::GET, path, headers, None).await
    }

    pub async fn post_form(&mut self, path: &str, headers: &[(&str, &str)], form: String) -> anyhow::Result<Response> {
        let mut h: Vec<(&str, &str)> = headers.to_vec();
        h.push(("content-type", "application/x-www-form-urlencoded"));
        self.send(Method::POST, path, &h, Some(form)).await
    }
}
