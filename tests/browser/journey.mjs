// What every browser journey shares: Debian's Chromium launched headless with the flags this
// machine needs (never a browser a tool downloads), and the step protocol with the Rust test
// (`tests/e2e/common.rs`, `Journey`): one JSON object per line out, one line in where it waits.
import { chromium } from "playwright-core";
import readline from "node:readline";

export const launchChromium = () =>
  chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });

export const stdio = () => {
  const input = readline.createInterface({ input: process.stdin });
  const lines = input[Symbol.asyncIterator]();
  const say = (o) => console.log(JSON.stringify(o));
  return { input, lines, say };
};

// A page whose script errors and console errors are collected in `errors`.
export const pageWithErrors = async (context) => {
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
  return { page, errors };
};
