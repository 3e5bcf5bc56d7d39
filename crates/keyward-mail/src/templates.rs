//! Mail templates: [`MailTemplates`] renders the sign-in code email from the
//! Tera templates in `ui/mail/`, embedded into the binary at compile time.

use serde::Serialize;
use tera::{Context, Tera};

use crate::{MailError, OutgoingMail};

const SIGN_IN_CODE_TXT: &str = include_str!("../../../ui/mail/sign_in_code.txt.tera");
const SIGN_IN_CODE_HTML: &str = include_str!("../../../ui/mail/sign_in_code.html.tera");

const INVITATION_TXT: &str = include_str!("../../../ui/mail/invitation.txt.tera");
const INVITATION_HTML: &str = include_str!("../../../ui/mail/invitation.html.tera");

const NOTICE_TXT: &str = include_str!("../../../ui/mail/security_notice.txt.tera");
const NOTICE_HTML: &str = include_str!("../../../ui/mail/security_notice.html.tera");

const REAUTH_TXT: &str = include_str!("../../../ui/mail/reauth_code.txt.tera");
const REAUTH_HTML: &str = include_str!("../../../ui/mail/reauth_code.html.tera");

const TXT_NAME: &str = "sign_in_code.txt";
const HTML_NAME: &str = "sign_in_code.html";

/// Everything the sign-in code email shows.
#[derive(Debug, Clone, Serialize)]
pub struct SignInCodeMail<'a> {
    /// The client application the user is signing in to.
    pub app_name: &'a str,
    /// The code, already formatted (`XXXX-XXXX`).
    pub code: &'a str,
    /// How long the code stays valid.
    pub minutes_valid: u32,
    /// When the code was requested, as human text (e.g. `25 Nov 2026 14:03 UTC`).
    pub requested_at: &'a str,
    /// The issuer (this Keyward instance), shown as the sender.
    pub issuer: &'a str,
    /// The magic link: opening it shows a confirmation page, it never signs in by itself.
    pub link: &'a str,
    /// A coarse description of where the request came from (e.g. `203.0.113.0/24`).
    pub requested_from: &'a str,
}

/// The compiled mail templates.
#[derive(Debug)]
pub struct MailTemplates {
    tera: Tera,
}

impl MailTemplates {
    /// Parses the embedded templates. HTML templates are autoescaped, text ones not.
    pub fn new() -> Result<MailTemplates, MailError> {
        let mut tera = Tera::default();
        tera.autoescape_on(vec![".html"]);
        tera.add_raw_templates(vec![
            (TXT_NAME, SIGN_IN_CODE_TXT),
            (HTML_NAME, SIGN_IN_CODE_HTML),
            ("invitation.txt", INVITATION_TXT),
            ("invitation.html", INVITATION_HTML),
            ("security_notice.txt", NOTICE_TXT),
            ("security_notice.html", NOTICE_HTML),
            ("reauth_code.txt", REAUTH_TXT),
            ("reauth_code.html", REAUTH_HTML),
        ])?;
        Ok(MailTemplates { tera })
    }

    /// Renders the sign-in code email for `to`.
    pub fn sign_in_code(&self, to: &str, m: &SignInCodeMail) -> Result<OutgoingMail, MailError> {
        let context = Context::from_serialize(m)?;
        let text = self.tera.render(TXT_NAME, &context)?;
        let html = self.tera.render(HTML_NAME, &context)?;
        let subject = format!("Your sign-in code for {}: {}", single_line(m.app_name), single_line(m.code));
        Ok(OutgoingMail { to: to.to_owned(), subject, text, html })
    }
}

impl MailTemplates {
    /// Renders the code that confirms a sensitive account change (re-authentication).
    pub fn reauth_code(
        &self,
        to: &str,
        issuer: &str,
        code: &str,
        minutes_valid: u32,
        requested_at: &str,
        requested_from: &str,
    ) -> Result<OutgoingMail, MailError> {
        let mut context = Context::new();
        context.insert("issuer", issuer);
        context.insert("code", code);
        context.insert("minutes_valid", &minutes_valid);
        context.insert("requested_at", requested_at);
        context.insert("requested_from", requested_from);
        Ok(OutgoingMail {
            to: to.to_owned(),
            subject: format!("Your confirmation code: {}", single_line(code)),
            text: self.tera.render("reauth_code.txt", &context)?,
            html: self.tera.render("reauth_code.html", &context)?,
        })
    }
}

impl MailTemplates {
    /// Renders an invitation to `to` for the Keyward at `issuer`, from `inviter` (a name).
    pub fn invitation(&self, to: &str, issuer: &str, inviter: &str) -> Result<OutgoingMail, MailError> {
        let mut context = Context::new();
        context.insert("email", to);
        context.insert("issuer", issuer);
        context.insert("inviter", inviter);
        Ok(OutgoingMail {
            to: to.to_owned(),
            subject: format!("You're invited to sign in at {}", single_line(issuer)),
            text: self.tera.render("invitation.txt", &context)?,
            html: self.tera.render("invitation.html", &context)?,
        })
    }
}

impl MailTemplates {
    /// Renders a security notice: `what` happened to the account at `when`, with what to do
    /// if it wasn't the person.
    pub fn security_notice(&self, to: &str, issuer: &str, what: &str, when: &str) -> Result<OutgoingMail, MailError> {
        let mut context = Context::new();
        context.insert("email", to);
        context.insert("issuer", issuer);
        context.insert("what", what);
        context.insert("when", when);
        Ok(OutgoingMail {
            to: to.to_owned(),
            subject: "Security notice for your sign-in account".to_owned(),
            text: self.tera.render("security_notice.txt", &context)?,
            html: self.tera.render("security_notice.html", &context)?,
        })
    }
}

/// Keeps header values on one line whatever the configured app name contains.
fn single_line(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect::<String>().trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample<'a>(app_name: &'a str) -> SignInCodeMail<'a> {
        SignInCodeMail {
            app_name,
            code: "ABCD-EFGH",
            minutes_valid: 10,
            requested_at: "25 Nov 2026 14:03 UTC",
            issuer: "https://id.example.com",
            link: "https://id.example.com/login/link?token=T0KEN",
            requested_from: "203.0.113.0/24",
        }
    }

    #[test]
    fn renders_code_in_text_and_html() -> Result<(), MailError> {
        let templates = MailTemplates::new()?;
        let mail = templates.sign_in_code("alice@example.com", &sample("Photo App"))?;
        assert_eq!(mail.to, "alice@example.com");
        assert_eq!(mail.subject, "Your sign-in code for Photo App: ABCD-EFGH");
        assert!(mail.text.lines().any(|l| l == "ABCD-EFGH"), "{}", mail.text);
        assert!(mail.text.contains("valid for 10 minutes"));
        assert!(mail.text.contains("25 Nov 2026 14:03 UTC"));
        assert!(mail.text.contains("nobody can sign in without this code"));
        assert!(mail.text.contains("Photo App"));
        assert!(mail.html.contains("ABCD-EFGH"));
        assert!(mail.html.contains("10 minutes"));
        assert!(mail.html.contains("https:&#x2F;&#x2F;id.example.com") || mail.html.contains("https://id.example.com"));
        Ok(())
    }

    #[test]
    fn one_minute_is_singular() -> Result<(), MailError> {
        let templates = MailTemplates::new()?;
        let mut m = sample("App");
        m.minutes_valid = 1;
        let mail = templates.sign_in_code("a@example.com", &m)?;
        assert!(mail.text.contains("valid for 1 minute and"), "{}", mail.text);
        assert!(mail.text.contains("/login/link?token=T0KEN"), "the text part carries the link");
        Ok(())
    }

    #[test]
    fn html_escapes_app_name_but_text_does_not() -> Result<(), MailError> {
        let templates = MailTemplates::new()?;
        let mail = templates.sign_in_code("a@example.com", &sample("<b>Evil</b> & Co"))?;
        assert!(!mail.html.contains("<b>Evil</b>"));
        assert!(mail.html.contains("&lt;b&gt;Evil&lt;&#x2F;b&gt; &amp; Co"), "{}", mail.html);
        assert!(mail.text.contains("<b>Evil</b> & Co"));
        Ok(())
    }

    #[test]
    fn subject_is_single_line() -> Result<(), MailError> {
        let templates = MailTemplates::new()?;
        let mail = templates.sign_in_code("a@example.com", &sample("Bad\r\nBcc: x@y"))?;
        assert!(!mail.subject.contains('\n') && !mail.subject.contains('\r'));
        Ok(())
    }
}
