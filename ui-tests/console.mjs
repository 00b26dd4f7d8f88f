// Drives Debian's Chromium through the hookgate console. Started by
// crates/server/tests/it/console.rs, which runs the gateway, sends the events and reads
// this script's exit code; everything this script needs comes from its environment.
//
// It fails on any console error, uncaught exception, failed request, HTTP answer >= 400,
// or dialog, and on any sign that a payload from a request ran as code.

import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const base = env("HOOKGATE_URL");
const token = env("HOOKGATE_TOKEN");
const xssEvent = env("HOOKGATE_XSS_EVENT");
const deadEvent = env("HOOKGATE_DEAD_EVENT");
const deadCount = Number(env("HOOKGATE_DEAD_COUNT"));
const eventCount = Number(env("HOOKGATE_EVENT_COUNT"));
const shots = env("HOOKGATE_SCREENSHOTS");
const executablePath = process.env.HOOKGATE_CHROMIUM || "/usr/bin/chromium";

const failures = [];
const steps = [];
const step = (text) => {
  steps.push(text);
  console.log("step: " + text);
};

mkdirSync(shots, { recursive: true });
const profile = mkdtempSync(join(tmpdir(), "hookgate-chromium-"));
const context = await chromium.launchPersistentContext(profile, {
  executablePath,
  headless: true,
  viewport: { width: 1360, height: 860 },
  args: [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
});

async function main() {
  const page = context.pages()[0] || (await context.newPage());
  page.setDefaultTimeout(15000);
  page.on("console", (m) => { if (m.type() === "error") failures.push("console error: " + m.text()); });
  page.on("pageerror", (e) => failures.push("uncaught: " + e.message));
  page.on("requestfailed", (r) => failures.push(`request failed: ${r.method()} ${r.url()}: ${r.failure()?.errorText}`));
  page.on("response", (r) => { if (r.status() >= 400) failures.push(`HTTP ${r.status()}: ${r.request().method()} ${r.url()}`); });
  page.on("dialog", (d) => { failures.push("dialog opened: " + d.message()); d.dismiss(); });
  const shot = (name) => page.screenshot({ path: join(shots, name + ".png"), fullPage: true });
  const noPayloadRan = async (where) => {
    const ran = await page.evaluate(() => ({
      flag: window.__xss,
      images: document.querySelectorAll('img[src="x"]').length,
      scripts: [...document.scripts].map((s) => s.src || "inline"),
    }));
    if (ran.flag !== undefined) failures.push(`${where}: a payload ran (window.__xss = ${ran.flag})`);
    if (ran.images) failures.push(`${where}: a payload became an <img> element`);
    if (ran.scripts.length !== 1 || !ran.scripts[0].endsWith("/ui/app.js")) {
      failures.push(`${where}: unexpected scripts: ${ran.scripts.join(", ")}`);
    }
  };

  step("log in");
  await page.goto(base + "/ui/");
  await page.waitForSelector("#login");
  await shot("login");
  await page.fill("#token", token);
  await page.click("#login button[type=submit]");
  await page.waitForSelector("#events-table tbody tr[data-id]");

  step("the events page lists every event, live, with its chart");
  const rows = await page.locator("#events-table tbody tr[data-id]").count();
  if (rows !== Math.min(eventCount, 50)) failures.push(`events page shows ${rows} rows, expected ${Math.min(eventCount, 50)}`);
  await page.waitForSelector(`#events-table tr[data-id="${xssEvent}"]`);
  const topic = await page.locator(`#events-table tr[data-id="${xssEvent}"] td:nth-child(3)`).textContent();
  if (!topic.includes("<script>")) failures.push("the payload topic is not shown as text: " + topic);
  const bars = await page.locator("#arrivals svg rect").count();
  if (bars !== 61) failures.push(`the chart has ${bars} bars, expected 61`);
  const tallest = await page.evaluate(() => Math.max(...[...document.querySelectorAll("#arrivals rect")].map((r) => Number(r.getAttribute("height")))));
  if (!(tallest > 0)) failures.push("the chart shows no arrivals");
  await noPayloadRan("events page");
  await shot("events");

  step("filter by status");
  await page.selectOption("#filter-status", "dead");
  await page.click("#event-filters button[type=submit]");
  await page.waitForFunction(() => location.hash.includes("status=dead"));
  await page.waitForSelector(`#events-table tr[data-id="${deadEvent}"]`);
  const deadRows = await page.locator("#events-table tbody tr[data-id]").count();
  if (deadRows !== deadCount) failures.push(`status=dead shows ${deadRows} rows, expected ${deadCount}`);
  const statuses = await page.locator("#events-table tbody tr[data-id] .badge").allTextContents();
  if (statuses.some((s) => s !== "dead")) failures.push("the dead filter shows: " + statuses.join(","));
  await shot("events-dead");

  step("filter by provider id");
  await page.goto(base + "/ui/#/events");
  await page.waitForSelector("#filter-provider_id");
  await page.fill("#filter-provider_id", "xss-<script>window.__xss=3</script>");
  await page.click("#event-filters button[type=submit]");
  await page.waitForFunction(() => location.hash.includes("provider_id="));
  await page.waitForSelector(`#events-table tr[data-id="${xssEvent}"]`);
  const providerRows = await page.locator("#events-table tbody tr[data-id]").count();
  if (providerRows !== 1) failures.push(`the provider-id filter shows ${providerRows} rows, expected 1`);

  step("open the event whose body, headers and topic hold payloads");
  await page.click(`#events-table tr[data-id="${xssEvent}"] a`);
  await page.waitForSelector("#body");
  const body = await page.locator("#body").textContent();
  if (!body.includes('"comment": "<script>window.__xss=1</script>')) failures.push("the body is not shown as pretty JSON text: " + body.slice(0, 200));
  const headers = await page.locator("#headers").textContent();
  if (!headers.includes('"><img src=x onerror=')) failures.push("the payload header is not shown as text");
  const scheme = await page.locator("#verification").textContent();
  if (!scheme.includes("hmac")) failures.push("the verification scheme is missing: " + scheme);
  await noPayloadRan("event page");
  await shot("event-payloads");

  step("replay a dead delivery and see it delivered");
  await page.goto(base + "/ui/#/events/" + encodeURIComponent(deadEvent));
  await page.waitForSelector('.delivery[data-destination="flip"][data-status="dead"]');
  await page.click('.delivery[data-destination="flip"] button.replay');
  await page.waitForSelector('.delivery[data-destination="flip"][data-status="delivered"]', { timeout: 20000 });
  const attempts = await page.locator('.delivery[data-destination="flip"] table.attempts tbody tr').count();
  if (attempts !== 2) failures.push(`the replayed delivery lists ${attempts} attempts, expected 2`);
  await shot("event");

  step("refused requests say why");
  await page.click('#nav a[data-page="refusals"]');
  await page.waitForSelector('#refusals-table tr[data-kind="bad_signature"]');
  const refusal = page.locator('#refusals-table tr[data-kind="bad_signature"]').first();
  await refusal.locator("summary").click();
  const shown = await refusal.textContent();
  if (!shown.includes("<script>window.__xss=1</script>")) failures.push("the refused body is not shown as text");
  await noPayloadRan("refusals page");
  await shot("refusals");

  step("pause a destination");
  await page.click('#nav a[data-page="destinations"]');
  await page.waitForSelector('#destinations-table tr[data-name="ok"] button.pause');
  await page.click('#destinations-table tr[data-name="ok"] button.pause');
  await page.waitForFunction(() => document.querySelector('#destinations-table tr[data-name="ok"] .state')?.textContent === "paused");
  await page.waitForSelector('#destinations-table tr[data-name="ok"] button.resume');

  step("replay a destination's dead deliveries");
  await page.click('#destinations-table tr[data-name="flip"] button.replay-dead');
  await page.waitForFunction(() => {
    const cells = document.querySelectorAll('#destinations-table tr[data-name="flip"] td');
    return cells[6]?.textContent === "0" && cells[5]?.textContent === "3";
  }, null, { timeout: 20000 });
  await shot("destinations");

  step("sources and their counters");
  await page.click('#nav a[data-page="sources"]');
  await page.waitForSelector('#sources-table tr[data-name="gh"]');
  const counters = await page.locator('#sources-table tr[data-name="gh"]').textContent();
  if (!counters.includes("bad_signature")) failures.push("the source's counters miss its refusals: " + counters);
  await shot("sources");

  step("log out");
  await page.click("#logout");
  await page.waitForSelector("#login");
}

let crashed = null;
try {
  await main();
} catch (e) {
  crashed = e;
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
if (crashed) failures.push(`failed at "${steps.at(-1)}": ${crashed.message}`);
if (failures.length) {
  for (const f of failures) console.error("FAIL " + f);
  process.exit(1);
}
console.log(`ok: ${steps.length} steps, screenshots in ${shots}`);
