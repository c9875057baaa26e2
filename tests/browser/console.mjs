// A remote control for headless Chromium, so the console's browser tests can be written in
// Rust beside the rest of the suite. Reads one JSON command per line on standard input and
// answers each with one JSON line: {"ok": true, "value": …} or {"ok": false, "error": "…"}.
// Each named page lives in its own browser context (its own cookies: one agent per page).
// When a command fails, every page is saved as a screenshot in ARTIFACT_DIR first.
// Usage: node console.mjs ARTIFACT_DIR
import { chromium } from "playwright-core";
import { createInterface } from "node:readline";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

const [artifactDir] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const pages = new Map();
const dialogs = new Map();
const TIMEOUT = 30000;

function locate(page, c) {
  if (c.label) return page.getByLabel(c.label, { exact: true });
  if (c.role) return page.getByRole(c.role, { name: c.name, exact: true });
  return page.locator(c.selector);
}

const ops = {
  async open(c) {
    const context = await browser.newContext({ locale: c.locale ?? "en-US", timezoneId: c.timezone ?? "Europe/Madrid" });
    const page = await context.newPage();
    page.on("console", (m) => console.error(`[${c.page}] console ${m.type()}: ${m.text()}`));
    page.on("pageerror", (e) => console.error(`[${c.page}] page error: ${e.message}`));
    // Any alert, confirm or prompt, from the page or any frame in it: an injected script ran.
    const seen = [];
    page.on("dialog", async (d) => {
      seen.push(`${d.type()}: ${d.message()}`);
      await d.dismiss().catch(() => {});
    });
    dialogs.set(c.page, seen);
    pages.set(c.page, page);
    await page.goto(c.url);
  },
  async goto(c, page) {
    await page.goto(c.url);
  },
  async fill(c, page) {
    await locate(page, c).fill(c.value, { timeout: TIMEOUT });
  },
  async type(c, page) {
    await locate(page, c).pressSequentially(c.value, { timeout: TIMEOUT, delay: 20 });
  },
  async press(c, page) {
    if (c.selector || c.label || c.role) await locate(page, c).press(c.key, { timeout: TIMEOUT });
    else await page.keyboard.press(c.key);
  },
  async click(c, page) {
    await locate(page, c).first().click({ timeout: TIMEOUT });
  },
  async select(c, page) {
    await locate(page, c).selectOption(c.value, { timeout: TIMEOUT });
  },
  /** Waits until some element matching the selector contains the text. */
  async waitText(c, page) {
    await page.locator(c.selector).filter({ hasText: c.text }).first().waitFor({ timeout: c.timeout ?? TIMEOUT });
  },
  /** Waits until the selector matches exactly `count` elements. */
  async waitCount(c, page) {
    const deadline = Date.now() + (c.timeout ?? TIMEOUT);
    let n;
    while ((n = await page.locator(c.selector).count()) !== c.count) {
      if (Date.now() > deadline) throw new Error(`${c.selector} matched ${n} elements, not ${c.count}`);
      await page.waitForTimeout(50);
    }
    return n;
  },
  async texts(c, page) {
    return await page.locator(c.selector).allInnerTexts();
  },
  async attributes(c, page) {
    return await page.locator(c.selector).evaluateAll((els, name) => els.map((e) => e.getAttribute(name)), c.name);
  },
  async value(c, page) {
    return await locate(page, c).inputValue({ timeout: TIMEOUT });
  },
  /** Runs an async function body in the page and returns its result. */
  async evaluate(c, page) {
    return await page.evaluate(`(async () => { ${c.body} })()`);
  },
  /** Clicks a link that downloads a file and returns the file's text. */
  async download(c, page) {
    const [download] = await Promise.all([page.waitForEvent("download", { timeout: TIMEOUT }), locate(page, c).click({ timeout: TIMEOUT })]);
    const { readFile } = await import("node:fs/promises");
    return { name: download.suggestedFilename(), text: await readFile(await download.path(), "utf8") };
  },
  /** Every dialog the page has opened so far. */
  async dialogs(c) {
    return dialogs.get(c.page) ?? [];
  },
  async viewport(c, page) {
    await page.setViewportSize({ width: c.width, height: c.height });
  },
  async screenshot(c, page) {
    mkdirSync(artifactDir, { recursive: true });
    await page.screenshot({ path: join(artifactDir, c.name), fullPage: true });
  },
};

let failures = 0;
for await (const line of createInterface({ input: process.stdin })) {
  if (!line.trim()) continue;
  const command = JSON.parse(line);
  try {
    const page = command.op === "open" ? null : pages.get(command.page);
    if (command.op !== "open" && !page) throw new Error(`no page named ${command.page}`);
    const value = await ops[command.op](command, page);
    console.log(JSON.stringify({ ok: true, value: value ?? null }));
  } catch (error) {
    failures += 1;
    mkdirSync(artifactDir, { recursive: true });
    const shots = [];
    for (const [name, page] of pages) {
      const path = join(artifactDir, `failure-${failures}-${name}.png`);
      await page.screenshot({ path, fullPage: true }).catch(() => {});
      shots.push(path);
    }
    console.log(JSON.stringify({ ok: false, error: `${command.op}: ${error.message}`, screenshots: shots }));
  }
}
await browser.close();
process.exit(0);
