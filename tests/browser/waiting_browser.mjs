// Plays the waiting browser of a cross-device sign-in in Debian's headless Chromium:
// opens the authorization URL, asks for an email, prints the approval number the page shows
// (one JSON line), then waits, without touching the page, until it continues to the app by
// itself, and prints the callback URL it went to and any script or CSP errors (a second JSON line).
//
// usage: node waiting_browser.mjs AUTHORIZE_URL EMAIL CALLBACK_PREFIX
import { launchChromium, pageWithErrors } from "./journey.mjs";

const [authorizeUrl, email, callbackPrefix] = process.argv.slice(2);
const browser = await launchChromium();
try {
  const context = await browser.newContext({ viewport: { width: 390, height: 844 } });
  const { page, errors } = await pageWithErrors(context);
  page.on("response", (r) => { if (r.status() >= 400) errors.push(`${r.status()} ${r.url()}`); });
  // No app listens on the callback; the request the browser makes for it is what counts.
  const toApp = page.waitForRequest((r) => r.url().startsWith(callbackPrefix), { timeout: 45000 });

  await page.goto(authorizeUrl);
  await page.getByLabel("Email address").fill(email);
  await page.getByRole("button", { name: "Email me a code" }).click();
  await page.waitForURL(/\/login\/code\?attempt=/);
  const number = (await page.locator(".approval-number").textContent()).trim();
  console.log(JSON.stringify({ number }));

  const callback = (await toApp).url();
  console.log(JSON.stringify({ callback, errors: errors.filter((e) => !e.includes("ERR_CONNECTION_REFUSED")) }));
} finally {
  await browser.close();
}
