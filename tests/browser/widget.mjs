// Plays a website visitor in headless Chromium: opens a page embedding the chat widget, sends a
// message, reports "sent" once the hub acknowledged it, then waits until the text given on
// standard input (the agent's reply) appears in the widget and reports "received"; then, told
// "seen?" on standard input, waits until the visitor's message shows the agent has seen it and
// reports the label shown.
// Usage: node widget.mjs PAGE_URL PROFILE_DIR MESSAGE
import { chromium } from "playwright-core";
import { createInterface } from "node:readline";

const [pageUrl, profileDir, message] = process.argv.slice(2);
const context = await chromium.launchPersistentContext(profileDir, {
  executablePath: "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
try {
  const page = await context.newPage();
  page.on("console", (entry) => console.error(`page console: ${entry.text()}`));
  page.on("pageerror", (error) => console.error(`page error: ${error.message}`));
  await page.goto(pageUrl);
  await page.getByRole("button", { name: "Habla con nosotros" }).click();
  const box = page.getByRole("textbox", { name: "Escribe un mensaje…" });
  await box.fill(message);
  await box.press("Enter");
  // Acknowledged by the hub: the item gets the stored interaction's id.
  await page.locator('li[data-direction="inbound"][data-id]').first().waitFor({ timeout: 15000 });
  console.log("sent");
  const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
  const reply = (await lines.next()).value;
  await page.getByRole("log").getByText(reply).waitFor({ timeout: 15000 });
  const live = await page.getByRole("log").getAttribute("aria-live");
  console.log(`received ${live}`);
  await lines.next();
  const seen = page.locator('li[data-direction="inbound"][data-state="seen"]').first();
  await seen.waitFor({ timeout: 15000 });
  console.log(`seen ${await seen.getAttribute("data-seen")}`);
} finally {
  await context.close();
}
process.exit(0);
