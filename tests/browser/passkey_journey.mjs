// The passkey journey in Debian's headless Chromium with a CDP virtual authenticator
// (ctap2, internal transport, resident keys, user verification): sign in by emailed code,
// accept the "sign in faster next time" offer (a passkey plus ten recovery codes), see it
// on the account page, drop the session, then sign in again through an app with no typing
// at all (the login page's passkey autofill completes by itself).
//
// usage: node passkey_journey.mjs AUTHORIZE_URL_1 AUTHORIZE_URL_2 EMAIL CALLBACK_PREFIX ACCOUNT_URL
// Prints JSON lines: {"step":"code"} (then reads the code on stdin), {"recovery_codes":N},
// {"callback1":…}, {"passkeys":N}, {"callback2":…,"errors":[…]}.
import { launchChromium, stdio } from "./journey.mjs";

const [first, second, email, callbackPrefix, accountUrl] = process.argv.slice(2);
const { input, lines, say } = stdio();

const browser = await launchChromium();
try {
  const context = await browser.newContext();
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("response", (r) => { if (r.status() >= 400 && !r.url().startsWith(callbackPrefix)) errors.push(`${r.status()} ${r.url()}`); });
  const cdp = await context.newCDPSession(page);
  await cdp.send("WebAuthn.enable");
  await cdp.send("WebAuthn.addVirtualAuthenticator", {
    options: { protocol: "ctap2", transport: "internal", hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true },
  });

  // The app's callback does not answer, so Chromium ends each trip to the app on its own
  // error page; wait for that before going on, or the next navigation is interrupted by it.
  const settled = () => page.waitForURL((u) => u.protocol === "chrome-error:", { timeout: 20000 });

  // 1. Email sign-in.
  let toApp = page.waitForRequest((r) => r.url().startsWith(callbackPrefix), { timeout: 45000 });
  await page.goto(first);
  await page.getByLabel("Email address").fill(email);
  await page.getByRole("button", { name: "Email me a code" }).click();
  await page.waitForURL(/\/login\/code\?attempt=/);
  say({ step: "code" });
  const code = (await lines.next()).value.trim();
  await page.getByLabel("Sign-in code").fill(code);
  await page.getByRole("button", { name: "Sign in", exact: true }).click();

  // 2. The offer: create a passkey on this device, get recovery codes, continue to the app.
  await page.waitForURL(/\/login\/passkey-offer\?attempt=/);
  await page.getByRole("button", { name: "Create a passkey" }).click();
  await page.waitForSelector("#recovery-new .codes li", { timeout: 20000 });
  say({ recovery_codes: await page.locator("#recovery-new .codes li").count() });
  await page.getByRole("button", { name: /^Continue to / }).click();
  say({ callback1: (await toApp).url() });
  await settled();

  // The account page lists it.
  await page.goto(accountUrl);
  say({ passkeys: await page.locator(".passkeys > li").count() });

  // 3. Without a session, the app sends the person back: the passkey signs in by itself.
  await context.clearCookies({ name: "__Host-keyward_session" });
  toApp = page.waitForRequest((r) => r.url().startsWith(callbackPrefix), { timeout: 45000 });
  await page.goto(second);
  say({ callback2: (await toApp).url(), errors });
} finally {
  input.close();
  await browser.close();
}
