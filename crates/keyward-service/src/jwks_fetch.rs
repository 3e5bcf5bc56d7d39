//! Fetching a client's JWK Set from its `jwks_uri` (issue 14, finding 5): two HTTP clients
//! built once and shared, with connect, read and total timeouts, no redirects and no proxy;
//! only public addresses unless the client is allowed private ones (an IP literal is checked
//! here, a name by the resolver, so the connection goes to the address that was checked);
//! the body is read chunk by chunk and refused once it passes 64 KiB.

use jsonwebtoken::jwk::JwkSet;
use keyward_core::net::non_public_range;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// The most a JWK Set may weigh (a set of a few dozen RSA keys fits many times over).
pub const MAX_JWKS_BYTES: usize = 64 * 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Between two reads of the answer (a server that stops sending).
const READ_TIMEOUT: Duration = Duration::from_secs(3);
/// The whole fetch, body included (a server that drips bytes).
const TOTAL_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a JWK Set could not be fetched: for the log (the client only sees `invalid_client`).
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("the jwks_uri is not a URL with a host")]
    BadUrl,
    #[error(
        "{host} is a non-public address ({range}); Keyward only fetches keys from public addresses unless the client sets allow_private_jwks_uri = true"
    )]
    NonPublic { host: String, range: &'static str },
    #[error(
        "{host} resolves only to non-public addresses ({range}); Keyward only fetches keys from public addresses unless the client sets allow_private_jwks_uri = true"
    )]
    NonPublicName { host: String, range: &'static str },
    #[error("the answer is larger than {} KiB", MAX_JWKS_BYTES / 1024)]
    TooLarge,
    #[error("the answer is HTTP {0} (redirects are not followed)")]
    Status(u16),
    #[error("the answer is not a JWK Set: {0}")]
    NotJwks(String),
    #[error("no answer within the timeout ({} s)", TOTAL_TIMEOUT.as_secs())]
    Timeout,
    #[error("{0}")]
    Http(String),
}

/// The refusal the resolver gives for a name with only non-public addresses.
#[derive(Debug, thiserror::Error)]
#[error("{host} resolves only to non-public addresses ({range})")]
struct NonPublicName {
    host: String,
    range: &'static str,
}

/// Resolves names with the system resolver and keeps only public addresses.
struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let all: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let first_refused = all.iter().find_map(|a| non_public_range(a.ip()));
            let public: Vec<SocketAddr> = all.into_iter().filter(|a| non_public_range(a.ip()).is_none()).collect();
            if public.is_empty() {
                let range = first_refused.unwrap_or("no address");
                return Err(Box::new(NonPublicName { host, range }) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(public.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The shared HTTP clients (connection pools live inside; clone-free use through `&self`).
pub struct JwksFetcher {
    public_only: reqwest::Client,
    any_address: reqwest::Client,
}

fn builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(READ_TIMEOUT)
        .timeout(TOTAL_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        // A proxy would resolve the host itself, past the address check.
        .no_proxy()
        .user_agent(concat!("Keyward/", env!("CARGO_PKG_VERSION")))
}

impl JwksFetcher {
    pub fn new() -> Result<JwksFetcher, reqwest::Error> {
        Ok(JwksFetcher { public_only: builder().dns_resolver(Arc::new(PublicOnly)).build()?, any_address: builder().build()? })
    }

    /// GETs `uri` and parses the JWK Set, within the size and time limits.
    pub async fn fetch(&self, uri: &str, allow_private: bool) -> Result<JwkSet, FetchError> {
        let url = url::Url::parse(uri).map_err(|_| FetchError::BadUrl)?;
        let ip = match url.host() {
            None => return Err(FetchError::BadUrl),
            Some(url::Host::Ipv4(ip)) => Some(std::net::IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(std::net::IpAddr::V6(ip)),
            Some(url::Host::Domain(_)) => None,
        };
        // The resolver is not asked about IP literals: they are checked here.
        if let Some(range) = ip.filter(|_| !allow_private).and_then(non_public_range) {
            return Err(FetchError::NonPublic { host: url.host_str().unwrap_or_default().to_owned(), range });
        }
        let http = if allow_private { &self.any_address } else { &self.public_only };
        let mut resp =
            http.get(url).header(reqwest::header::ACCEPT, "application/jwk-set+json, application/json").send().await.map_err(classify)?;
        if !resp.status().is_success() {
            return Err(FetchError::Status(resp.status().as_u16()));
        }
        if resp.content_length().is_some_and(|n| n > MAX_JWKS_BYTES as u64) {
            return Err(FetchError::TooLarge);
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(classify)? {
            if body.len() + chunk.len() > MAX_JWKS_BYTES {
                // Dropping the response closes the connection: the rest is never read.
                return Err(FetchError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        serde_json::from_slice(&body).map_err(|e| FetchError::NotJwks(e.to_string()))
    }
}

/// Names the cause: a refused address (from the resolver, deep in the chain), a timeout, or
/// the HTTP error with its chain.
fn classify(e: reqwest::Error) -> FetchError {
    if e.is_timeout() {
        return FetchError::Timeout;
    }
    let mut chain = Vec::new();
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(cause) = source {
        if let Some(refused) = cause.downcast_ref::<NonPublicName>() {
            return FetchError::NonPublicName { host: refused.host.clone(), range: refused.range };
        }
        chain.push(cause.to_string());
        source = cause.source();
    }
    FetchError::Http(chain.join(": "))
}
