//! A scripted browser for HTTP-level tests: keeps cookies, never follows redirects (tests
//! look at every hop), and reads forms out of Keyward's pages.

use anyhow::{Context as _, bail};
use reqwest::StatusCode;
use reqwest::redirect::Policy;

pub struct Browser {
    pub http: reqwest::Client,
    pub jar: std::sync::Arc<reqwest::cookie::Jar>,
}

/// A response, read whole.
pub struct Page {
    pub status: StatusCode,
    pub location: Option<String>,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Browser {
    pub fn new() -> anyhow::Result<Browser> {
        let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
        let http = reqwest::Client::builder().cookie_provider(jar.clone()).redirect(Policy::none()).build()?;
        Ok(Browser { http, jar })
    }

    /// A browser that opens a new connection for every request (so a round-robin proxy in
    /// front of several instances alternates between them request by request).
    pub fn fresh_connections() -> anyhow::Result<Browser> {
        let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
        let http = reqwest::Client::builder().cookie_provider(jar.clone()).redirect(Policy::none()).pool_max_idle_per_host(0).build()?;
        Ok(Browser { http, jar })
    }

    pub async fn get(&self, url: &str) -> anyhow::Result<Page> {
        Page::read(self.http.get(url).send().await.with_context(|| format!("GET {url}"))?).await
    }

    pub async fn post_form(&self, url: &str, form: &[(&str, &str)]) -> anyhow::Result<Page> {
        Page::read(self.http.post(url).form(form).send().await.with_context(|| format!("POST {url}"))?).await
    }
}

impl Page {
    pub async fn read(resp: reqwest::Response) -> anyhow::Result<Page> {
        let status = resp.status();
        let headers = resp.headers().clone();
        let location = headers.get("location").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let body = resp.text().await?;
        Ok(Page { status, location, headers, body })
    }

    /// The redirect target, resolved against `base` when relative.
    pub fn redirect_to(&self, base: &str) -> anyhow::Result<String> {
        let Some(loc) = &self.location else { bail!("expected a redirect, got {} with body:\n{}", self.status, self.body) };
        Ok(url::Url::parse(base)?.join(loc)?.to_string())
    }

    /// The value of the first `<input name="NAME" … value="…">` on the page.
    pub fn input(&self, name: &str) -> anyhow::Result<String> {
        let marker = format!("name=\"{name}\"");
        let start = self.body.find(&marker).with_context(|| format!("no input {name} in:\n{}", self.body))?;
        let tag_start = self.body[..start].rfind('<').unwrap_or(0);
        let tag_end = start + self.body[start..].find('>').unwrap_or(self.body.len() - start);
        let tag = &self.body[tag_start..tag_end];
        let v = tag.find("value=\"").with_context(|| format!("input {name} has no value"))? + 7;
        let end = tag[v..].find('"').context("unterminated value")?;
        Ok(unescape(&tag[v..v + end]))
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
    }

    pub fn set_cookies(&self) -> Vec<String> {
        self.headers.get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()).map(str::to_owned).collect()
    }
}

/// Undoes tera's HTML escaping.
pub fn unescape(s: &str) -> String {
    s.replace("&#x2F;", "/").replace("&#x27;", "'").replace("&quot;", "\"").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
}

/// The `XXXX-XXXX` sign-in code in an email's text.
pub fn code_in(text: &str) -> anyhow::Result<String> {
    const ALPHABET: &str = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    for word in text.split(|c: char| c.is_whitespace()) {
        let w = word.trim_matches(|c: char| !c.is_ascii_alphanumeric() && c != '-');
        if w.len() == 9 && w.as_bytes()[4] == b'-' && w.chars().filter(|c| *c != '-').all(|c| ALPHABET.contains(c)) {
            return Ok(w.to_owned());
        }
    }
    bail!("no sign-in code in the email:\n{text}")
}

/// The magic link in an email's text.
pub fn link_in(text: &str) -> anyhow::Result<String> {
    text.split_whitespace()
        .find(|w| w.starts_with("http") && w.contains("/login/link?token="))
        .map(str::to_owned)
        .with_context(|| format!("no sign-in link in the email:\n{text}"))
}
