// Issue 14, finding 17, in Debian's headless Chromium: a person types a correct code while
// the app's callback is slow to answer. The code page polls /login/status every 2 s; the
// trip to the app must not be cancelled by a poll that finds the attempt finished.
//
// usage: node slow_callback.mjs AUTHORIZE_URL EMAIL CALLBACK_PREFIX
// Prints JSON lines: {"step":"code"} (then reads the code on stdin), then, at the first page
// load after the code is submitted, {"url":…,"h1":…,"errors":[…]}.
import { launchChromium, stdio, pageWithErrors } from "./journey.mjs";

const [authorizeUrl, email, callbackPrefix] = process.argv.slice(2);
const { input, lines, say } = stdio();

const browser = await launchChromium();
try {
  const context = await browser.newContext();
  const { page, errors } = await pageWithErrors(context);

  await page.goto(authorizeUrl);
  await page.getByLabel("Email address").fill(email);
  await page.getByRole("button", { name: "Email me a code" }).click();
  await page.waitForURL(/\/login\/code\?attempt=/);
  say({ step: "code" });
  const code = (await lines.next()).value.trim();
  await page.getByLabel("Sign-in code").fill(code);

  // Whatever page loads next is the outcome: the app's page, or Keyward's again.
  const outcome = new Promise((resolve) => {
    page.on("load", async () => {
      const h1 = await page.locator("h1").first().textContent({ timeout: 5000 }).catch(() => null);
      resolve({ url: page.url(), h1: h1 && h1.trim() });
    });
  });
  await page.getByRole("button", { name: "Sign in", exact: true }).click({ noWaitAfter: true });
  let timer;
  const timeout = new Promise((resolve) => { timer = setTimeout(() => resolve({ url: page.url(), h1: null, timeout: true }), 40000); });
  say({ ...(await Promise.race([outcome, timeout])), errors });
  clearTimeout(timer);
} finally {
  input.close();
  await browser.close();
}
