// Issue 14, finding 4, in Debian's headless Chromium with a CDP virtual authenticator: an old
// sign-in asks "Confirm it's you" before a security change, and the change then continues.
//   1. Sign in by emailed code (declining the passkey offer), open the account page.
//   2. (The test ages the session.) "Add a passkey" goes to the confirmation page; an
//      emailed code confirms; back on the account page the script creates the passkey by
//      itself (the first one comes with recovery codes).
//   3. (Aged again.) "Make new recovery codes" goes to the confirmation page; "Confirm with a
//      passkey" (the one just made, user verified) confirms; back at the recovery section the
//      button now makes new codes.
//
// usage: node reauth_journey.mjs AUTHORIZE_URL EMAIL CALLBACK_PREFIX ACCOUNT_URL
// Prints JSON lines and reads a line on stdin after: {"step":"code"} (the sign-in code),
// {"step":"account"} (anything, once the session is old), {"step":"confirm_code","url":…}
// (the confirmation code), {"created":…}, {"step":"aged_again"} (anything, once old), and
// finally {"confirmed_at":…,"new_codes":N,"errors":[…]}.
import { launchChromium, stdio } from "./journey.mjs";

const [authorizeUrl, email, callbackPrefix, accountUrl] = process.argv.slice(2);
const { input, lines, say } = stdio();
const ask = async (o) => { say(o); return (await lines.next()).value.trim(); };

const browser = await launchChromium();
try {
  const context = await browser.newContext();
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  // 403 reauthentication_required is the designed answer that starts the confirmation.
  page.on("response", (r) => {
    if (r.status() >= 400 && !r.url().startsWith(callbackPrefix) && !(r.status() === 403 && r.url().endsWith("/register/start"))) {
      errors.push(`${r.status()} ${r.url()}`);
    }
  });
  const cdp = await context.newCDPSession(page);
  await cdp.send("WebAuthn.enable");
  await cdp.send("WebAuthn.addVirtualAuthenticator", {
    options: { protocol: "ctap2", transport: "internal", hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true },
  });

  // 1. Email sign-in; no passkey yet.
  await page.goto(authorizeUrl);
  await page.getByLabel("Email address").fill(email);
  await page.getByRole("button", { name: "Email me a code" }).click();
  await page.waitForURL(/\/login\/code\?attempt=/);
  const code = await ask({ step: "code" });
  await page.getByLabel("Sign-in code").fill(code);
  await page.getByRole("button", { name: "Sign in", exact: true }).click();
  await page.waitForURL(/\/login\/passkey-offer\?attempt=/);
  const toApp = page.waitForRequest((r) => r.url().startsWith(callbackPrefix), { timeout: 20000 });
  await page.getByRole("button", { name: "Don't ask me again" }).click();
  await toApp;
  await page.waitForURL((u) => u.protocol === "chrome-error:", { timeout: 20000 });
  await page.goto(accountUrl);
  await ask({ step: "account" });

  // 2. Add a passkey on an old sign-in: confirm by email, then the page carries on.
  await page.getByRole("button", { name: "Add a passkey" }).click();
  await page.waitForURL(/\/account\/confirm\?next=/);
  const confirmUrl = page.url();
  await page.getByRole("button", { name: "Email me a code" }).click();
  await page.getByLabel("Confirmation code").waitFor();
  const confirmation = await ask({ step: "confirm_code", url: confirmUrl });
  await page.getByLabel("Confirmation code").fill(confirmation);
  await page.getByRole("button", { name: "Confirm", exact: true }).click();
  await page.waitForSelector("#recovery-new .codes li", { timeout: 20000 });
  say({ created: { url: page.url(), recovery_codes: await page.locator("#recovery-new .codes li").count() } });
  await page.goto(accountUrl);
  await ask({ step: "aged_again", passkeys: await page.locator(".passkeys > li").count() });

  // 3. New recovery codes on an old sign-in: confirm with the passkey, then make them.
  await page.getByRole("button", { name: "Make new recovery codes" }).click();
  await page.waitForURL(/\/account\/confirm\?next=/);
  await page.getByRole("button", { name: "Confirm with a passkey" }).click();
  await page.waitForURL(/\/account\?done=confirmed/);
  const confirmedAt = page.url();
  await page.getByRole("button", { name: "Make new recovery codes" }).click();
  await page.getByRole("heading", { name: "Your new recovery codes" }).waitFor();
  say({ confirmed_at: confirmedAt, new_codes: await page.locator("ol.codes li").count(), errors });
} finally {
  input.close();
  await browser.close();
}
