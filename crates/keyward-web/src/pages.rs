//! The hosted pages: tera templates embedded from `ui/templates` at compile time, rendered
//! with `Cache-Control: no-store` (pages carry CSRF tokens and codes).

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use std::sync::LazyLock;
use tera::{Context, Tera};

const TEMPLATES: &[(&str, &str)] = &[
    ("account.html", include_str!("../../../ui/templates/account.html")),
    ("base.html", include_str!("../../../ui/templates/base.html")),
    ("consent.html", include_str!("../../../ui/templates/consent.html")),
    ("error.html", include_str!("../../../ui/templates/error.html")),
    ("home.html", include_str!("../../../ui/templates/home.html")),
    ("login_email.html", include_str!("../../../ui/templates/login_email.html")),
    ("login_code.html", include_str!("../../../ui/templates/login_code.html")),
    ("login_link.html", include_str!("../../../ui/templates/login_link.html")),
    ("login_recovery.html", include_str!("../../../ui/templates/login_recovery.html")),
    ("logout_confirm.html", include_str!("../../../ui/templates/logout_confirm.html")),
    ("passkey_offer.html", include_str!("../../../ui/templates/passkey_offer.html")),
    ("reauth.html", include_str!("../../../ui/templates/reauth.html")),
    ("recovery_codes.html", include_str!("../../../ui/templates/recovery_codes.html")),
    ("notice.html", include_str!("../../../ui/templates/notice.html")),
    ("signed_in.html", include_str!("../../../ui/templates/signed_in.html")),
    ("try_index.html", include_str!("../../../ui/templates/try_index.html")),
    ("try_result.html", include_str!("../../../ui/templates/try_result.html")),
];

pub const STYLESHEET: &str = include_str!("../../../ui/static/keyward.css");
pub const LOGIN_SCRIPT: &str = include_str!("../../../ui/static/login.js");
pub const PASSKEY_SCRIPT: &str = include_str!("../../../ui/static/passkey.js");

static TERA: LazyLock<Result<Tera, String>> = LazyLock::new(|| {
    let mut t = Tera::default();
    t.add_raw_templates(TEMPLATES.iter().copied()).map_err(|e| format!("{e:?}"))?;
    Ok(t)
});

/// Proof at start-up that every template parses.
pub struct Pages;

impl Pages {
    pub fn new() -> Result<Pages, String> {
        TERA.as_ref().map(|_| Pages).map_err(|e| format!("templates do not parse: {e}"))
    }
}

pub fn render(status: StatusCode, name: &str, ctx: &Context) -> HttpResponse {
    let body = match TERA.as_ref() {
        Ok(t) => t.render(name, ctx),
        Err(e) => Err(tera::Error::msg(e.clone())),
    };
    match body {
        Ok(html) => {
            HttpResponse::build(status).content_type("text/html; charset=utf-8").insert_header(("Cache-Control", "no-store")).body(html)
        }
        Err(e) => {
            tracing::error!(template = name, error = ?e, "template failed to render");
            HttpResponse::InternalServerError()
                .content_type("text/plain; charset=utf-8")
                .body("Something went wrong on our side. Please try again in a moment.")
        }
    }
}

pub fn notice(title: &str, message: &str, hint: Option<&str>) -> HttpResponse {
    let mut ctx = Context::new();
    ctx.insert("title", title);
    ctx.insert("message", message);
    if let Some(h) = hint {
        ctx.insert("hint", h);
    }
    render(StatusCode::OK, "notice.html", &ctx)
}

pub fn error_page(status: StatusCode, title: &str, message: &str, hint: Option<&str>) -> HttpResponse {
    let mut ctx = Context::new();
    ctx.insert("title", title);
    ctx.insert("message", message);
    if let Some(h) = hint {
        ctx.insert("hint", h);
    }
    ctx.insert("status", &status.as_u16());
    render(status, "error.html", &ctx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_in_ui_is_embedded() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../ui/templates");
        for entry in std::fs::read_dir(dir).expect("ui/templates") {
            let name = entry.expect("entry").file_name().to_string_lossy().into_owned();
            assert!(TEMPLATES.iter().any(|(n, _)| *n == name), "{name} is in ui/templates but not embedded");
        }
    }

    #[test]
    fn e11_templates_parse_and_escape() {
        assert!(Pages::new().is_ok());
        let resp = error_page(StatusCode::BAD_REQUEST, "<script>x</script>", "m", None);
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        let mut ctx = Context::new();
        ctx.insert("title", "<b>");
        ctx.insert("message", "m");
        ctx.insert("status", &400);
        let html = TERA.as_ref().expect("templates").render("error.html", &ctx).expect("renders");
        assert!(html.contains("&lt;b&gt;") && !html.contains("<b>"));
    }
}
