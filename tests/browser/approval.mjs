// Drives headless Chromium (Debian's /usr/bin/chromium) through the approval page as a person
// would: a tampered link first (refusal page, no form), then the real link → page → form → decided.
// Usage: node tests/browser/approval.mjs <approve-url> <tampered-url> <database> <approver>
// Prints one JSON line of what it saw; exits non-zero when a step does not look as it should.
import { chromium } from "../../scripts/npm/node_modules/playwright-core/index.mjs";

const [approveUrl, tamperedUrl, database, approver] = process.argv.slice(2);
const seen = {};
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  // This machine's network is closed: without these Chromium tries Google's hosts at every start.
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync"],
});
try {
  const page = await browser.newPage();
  const tampered = await page.goto(tamperedUrl);
  seen.tampered = { status: tampered.status(), text: await page.locator("#outcome").innerText(),
    forms: await page.locator("form").count() };

  const shown = await page.goto(approveUrl);
  seen.page = { status: shown.status(), title: await page.title(), plan: await page.locator("#plan").innerText() };
  await page.fill("input[name=database]", database);
  await page.fill("input[name=approver]", approver);
  const [decided] = await Promise.all([page.waitForNavigation(), page.click("#decide")]);
  seen.decided = { status: decided.status(), text: await page.locator("#outcome").innerText() };

  const again = await page.goto(approveUrl);
  seen.again = { status: again.status(), text: await page.locator("#outcome").innerText() };
} finally {
  await browser.close();
}
console.log(JSON.stringify(seen));
const ok = seen.tampered.status === 403 && seen.tampered.forms === 0 && seen.page.status === 200
  && seen.decided.status === 200 && seen.again.status === 409;
process.exit(ok ? 0 : 1);
