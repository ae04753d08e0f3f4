// The console, clicked through in Debian's Chromium. Started by tests/console.rs, which serves
// a ledger on loopback, builds its story through the HTTP API and passes what this needs in
// PERMLEDGER_CONSOLE_TEST. Each step says what it checks; the first failure ends the run with
// a non-zero exit and the step's name.

import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { chromium } from "playwright-core";

const setup = JSON.parse(process.env.PERMLEDGER_CONSOLE_TEST);
const { base, tokens, seqs, screenshots } = setup;

// A fresh profile for every run (playwright passes it as --user-data-dir).
const browser = await chromium.launchPersistentContext(setup.profile, {
  executablePath: "/usr/bin/chromium",
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-quic",
  ],
  viewport: { width: 1280, height: 900 },
  acceptDownloads: true,
});
const context = browser;
const page = await context.newPage();
page.setDefaultTimeout(15000);

// No page may ever run a script the console did not ship: a dialog means markup got through.
page.on("dialog", async (d) => {
  console.error(`a dialog opened: ${d.message()}`);
  process.exit(2);
});
const problems = [];
page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
// Pages answered with an error status are part of the test; an asset or a stream that fails
// is not.
page.on("console", (m) => {
  if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) problems.push(`console error: ${m.text()}`);
});
page.on("response", (r) => {
  if (r.request().resourceType() !== "document" && r.status() >= 400) problems.push(`${r.status()} for ${r.url()}`);
});

/** The API's answer, with a token. */
async function api(path, token = tokens.ann) {
  const r = await fetch(base + path, { headers: { Authorization: `Bearer ${token}` } });
  return { status: r.status, text: await r.text(), headers: r.headers };
}

async function shot(name) {
  await page.screenshot({ path: `${screenshots}/${name}.png`, fullPage: true });
}

async function text(selector) {
  return (await page.locator(selector).first().innerText()).replace(/\s+/g, " ").trim();
}

/** Clicks a download link and answers the file's text and its suggested name. */
async function download(locator) {
  const [d] = await Promise.all([page.waitForEvent("download"), locator.click()]);
  return { name: d.suggestedFilename(), text: await readFile(await d.path(), "utf8") };
}

let steps = 0;
async function step(name, f) {
  try {
    await f();
    steps += 1;
    console.log(`ok ${steps} - ${name}`);
  } catch (e) {
    console.log(`not ok ${steps + 1} - ${name}`);
    console.log(e.stack ?? String(e));
    console.log(`page: ${page.url()}`);
    await page.screenshot({ path: `${screenshots}/failed.png`, fullPage: true }).catch(() => {});
    await browser.close();
    process.exit(1);
  }
}

const head = JSON.parse((await api("/healthz")).text).seq;

await step("a page without a session leads to sign-in, and back after it", async () => {
  await page.goto(`${base}/console/orgs/acme`);
  assert.match(page.url(), /\/console\/sign-in\?next=%2Fconsole%2Forgs%2Facme$/);
  assert.equal(await page.evaluate(() => document.activeElement.id), "token", "the token field has the focus");
  await shot("sign-in");
  await page.fill("#token", "plt_not-a-token");
  await page.click("button[type=submit]");
  assert.match(await text("[role=alert]"), /not known to this server/);
  await page.fill("#token", tokens.ann);
  await page.click("button[type=submit]");
  await page.waitForURL(`${base}/console/orgs/acme`);
  const cookies = await context.cookies();
  const session = cookies.find((c) => c.name === "permledger_session");
  assert.ok(session.httpOnly, "the session cookie is HttpOnly");
  assert.equal(session.sameSite, "Strict");
  assert.equal(await page.evaluate(() => document.cookie), "", "scripts see no cookie");
});

await step("every page has a strict Content-Security-Policy, and starts with a skip link", async () => {
  const r = await page.goto(`${base}/console`);
  await page.keyboard.press("Tab");
  assert.equal(await page.evaluate(() => document.activeElement.textContent), "Skip to content");
  const csp = r.headers()["content-security-policy"];
  assert.match(csp, /default-src 'none'/);
  assert.match(csp, /script-src 'self'/);
  assert.doesNotMatch(csp, /unsafe-inline/);
  assert.equal(r.headers()["x-frame-options"], "DENY");
});

await step("the orgs page lists what the token may read, and only that", async () => {
  await page.goto(`${base}/console`);
  const orgs = await page.locator("main table tbody tr td:first-child").allTextContents();
  assert.deepEqual(orgs, ["acme"]);
  await shot("orgs");
  const r = await page.goto(`${base}/console/orgs/globex`);
  assert.equal(r.status(), 403);
  assert.match(await text("[role=alert]"), /bound to org `acme`, not `globex`/);
});

await step("the org page shows owner, tree, members, roles and invites; hostile ids are text", async () => {
  await page.goto(`${base}/console/orgs/acme`);
  assert.equal(await text("h1"), "Acme (acme)");
  assert.match(await text("dl.facts"), /Owner ann/);
  const tree = await text("ul.tree");
  assert.match(tree, /team:support — Support inbox:billing — Billing/);
  assert.match(tree, /inbox:archive — Archive/);
  const members = await page.locator("#h-members ~ div table tbody tr td:first-child a").allTextContents();
  assert.deepEqual(members, ["<script>alert(1)</script>", "=2+3", "ann", "ivy", "mo", "sam"]);
  // A page of members at a time, saying which; six fit on one page, so no pager.
  assert.match(await text("#h-members ~ p[role=status]"), /Members 1–6 of 6, by id/);
  assert.equal(await page.locator("nav[aria-label='Pages of members']").count(), 0);
  assert.match(await text("#h-members ~ div table"), /sam suspended/);
  assert.match(await text("#h-roles + div table"), /inbox_member Inbox member inbox inbox.thread.assign/);
  assert.equal(await page.locator("main script, main img").count(), 0, "no markup came from the data");
  await shot("org");
});

await step("the slider moves the moment, by keyboard, and the address keeps it", async () => {
  await page.goto(`${base}/console/orgs/acme`);
  const slider = page.locator("#moment-seq");
  await slider.focus();
  for (let n = head; n > seqs.suspended - 1; n--) await page.keyboard.press("ArrowLeft");
  assert.equal(await text("output[for=moment-seq]"), String(seqs.suspended - 1));
  await page.keyboard.press("Enter");
  await page.waitForURL(`${base}/console/orgs/acme?at=${seqs.suspended - 1}`);
  assert.match(await text("section.moment .shown"), new RegExp(`after event ${seqs.suspended - 1}\\b`));
  assert.match(await text("#h-members ~ div table"), /sam active/);
  // The address is the moment: a colleague opening it sees the same.
  const colleague = await context.newPage();
  await colleague.goto(page.url());
  assert.match(await colleague.locator("#h-members ~ div table").textContent(), /sam\s*active/);
  await colleague.close();
  // Sections keep the moment.
  await page.click("header nav >> text=People");
  assert.match(page.url(), new RegExp(`/console/orgs/acme/people\\?at=${seqs.suspended - 1}$`));
});

await step("the time picker answers at an instant; a time before the org is a sentence", async () => {
  const grant = JSON.parse((await api(`/v1/orgs/acme/audit?as=ann&after=${seqs.grant - 1}&limit=1`)).text).entries[0];
  const instant = grant.time.slice(0, 19); // to the second: before the grant, after what came before
  await page.goto(`${base}/console/orgs/acme`);
  await page.fill("#moment-time", instant);
  await page.click("#moment-time ~ button");
  await page.waitForURL(/at=/);
  // Chromium writes a whole minute without its seconds (05:15, not 05:15:00).
  assert.match(decodeURIComponent(page.url()), new RegExp(`at=${instant.replace(/:00$/, "(:00)?")}$`));
  assert.match(await text("section.moment .shown"), new RegExp(`after event ${seqs.before_grant}\\b`));
  await page.fill("#moment-time", "2020-01-01T00:00:00");
  await page.click("#moment-time ~ button");
  assert.match(await text("[role=alert]"), /org `acme` does not exist at that moment/);
});

await step("a snapshot table downloads as the API answers it", async () => {
  await page.goto(`${base}/console/orgs/acme?at=${seqs.grant}`);
  const file = await download(page.locator("a", { hasText: "members (CSV)" }));
  assert.equal(file.name, `acme-members-seq${seqs.grant}.csv`);
  const answer = await api(`/v1/orgs/acme/snapshot/members?at=${seqs.grant}`);
  assert.equal(answer.status, 200);
  assert.equal(file.text, answer.text);
  assert.match(file.text, /^'=2\+3,/m, "a formula id is neutralized in CSV");
  const json = await download(page.locator("a", { hasText: "everything (JSON)" }));
  const whole = JSON.parse((await api(`/v1/orgs/acme/snapshot?at=${seqs.grant}`)).text);
  assert.deepEqual(JSON.parse(json.text), whole);
});

await step("people are found by id or address", async () => {
  await page.goto(`${base}/console/orgs/acme/people`);
  await page.fill("#people-q", "IVY@acme");
  await page.click("form.search button");
  assert.deepEqual(await page.locator("main table tbody tr td:first-child").allTextContents(), ["ivy"]);
  await shot("people");
  await page.fill("#people-q", "nobody-here");
  await page.click("form.search button");
  assert.match(await text("p.empty"), /No one at this moment has an id or invited address containing “nobody-here”/);
});

await step("a person's page: access with reasons and events, timeline, what changed", async () => {
  await page.goto(`${base}/console/orgs/acme/people?q=ivy`);
  await page.click("main table a >> text=ivy");
  await page.waitForURL(`${base}/console/orgs/acme/people/ivy`);
  const access = await text("section[aria-labelledby=h-access]");
  assert.match(access, /inbox.thread.reply: allowed: ivy holds inbox.thread.reply on inbox:leads directly until 2099-01-01T00:00:00Z, granted by mo .* \(request HR-110: "covering for Sam"\)/);
  assert.match(await text("main"), new RegExp(`inbox.thread.reply on inbox:leads until 2099-01-01T00:00:00Z \\(event ${seqs.grant}\\b`));
  // The window: from just before the grant to now.
  await page.fill("#window-from", String(seqs.before_grant));
  await page.click("form.window button");
  assert.match(decodeURIComponent(page.url()), new RegExp(`from=${seqs.before_grant}`));
  const diff = await text("#h-diff ~ ul.changes");
  assert.match(diff, /gained inbox.thread.reply on inbox:leads — mo granted ivy/);
  assert.doesNotMatch(diff, /inbox:billing/, "what ivy already held is no change");
  assert.match(await text("table.timeline"), /inbox.thread.reply inbox:leads mo granted ivy/);
  await shot("person");
  // The event behind the grant.
  await page.click(`section[aria-labelledby=h-access] a >> text=event ${seqs.grant}`);
  await page.waitForURL(`${base}/console/orgs/acme/events/${seqs.grant}`);
  const facts = await text("dl.facts");
  assert.match(facts, /Actor mo/);
  assert.match(facts, /Submitted through token “support-app”/);
  assert.match(facts, /Reason covering for Sam/);
  assert.match(facts, /Request HR-110/);
  await shot("event");
});

await step("a scope's page: who could do what there and why, and its history", async () => {
  await page.goto(`${base}/console/orgs/acme`);
  await page.click("ul.tree a >> text=inbox:billing");
  await page.waitForURL(`${base}/console/orgs/acme/scopes/inbox:billing`);
  const who = await text("#h-who ~ div table");
  assert.match(who, /ann inbox.thread.view allowed: ann owns the org/);
  assert.match(who, /ivy inbox.thread.view allowed: ivy holds inbox_member on inbox:billing/);
  assert.doesNotMatch(who, /sam inbox/, "a suspended member can do nothing");
  assert.match(await text("#h-history ~ div table"), /sam inbox.thread.view inbox:billing .* ann suspended sam/);
  await shot("scope");
});

await step("the trail filters by actor and type, pages, and exports exactly the filtered view", async () => {
  await page.goto(`${base}/console/orgs/acme/trail`);
  await page.fill("#f-actor", "ann");
  await page.selectOption("#f-types", ["member_suspended", "invite_issued"]);
  await page.click("form.filters button[type=submit]");
  await page.waitForURL(/actor=ann/);
  const rows = await page.locator("table.trail tbody tr").count();
  assert.equal(rows, 6, "five invites and a suspension");
  const last = await text("table.trail tbody tr:last-child");
  assert.match(last, /ann suspended sam/);
  assert.match(last, /<img src=x onerror=alert\(2\)> =HYPERLINK/, "a hostile reason reads as text");
  assert.match(last, /HR-128/);
  assert.match(last, /token “hr-sync”/);
  // Two per page: the cursor leads on, and back to the first page.
  await page.selectOption("#f-limit", "25");
  const params = new URL(page.url()).searchParams;
  params.set("limit", "2");
  await page.goto(`${base}/console/orgs/acme/trail?${params}`);
  assert.equal(await page.locator("table.trail tbody tr").count(), 2);
  await page.click("a[rel=next]");
  await page.click("a[rel=next]");
  assert.equal(await page.locator("table.trail tbody tr").count(), 2);
  assert.match(await text("[role=status]"), /the last page/);
  await page.click("text=First page");
  assert.equal(await page.locator("table.trail tbody tr").count(), 2);
  // The exports are the API's, for exactly these filters (all pages).
  const csv = await download(page.locator("a", { hasText: "CSV" }).first());
  const apiCsv = await api("/v1/orgs/acme/audit/export?as=ann&actor=ann&types=invite_issued,member_suspended&format=csv");
  assert.equal(csv.text, apiCsv.text);
  assert.equal(csv.name, "acme-audit.csv");
  assert.equal(csv.text.trim().split("\n").length, 8, "a header, six entries and the digest");
  const jsonl = await download(page.locator("a", { hasText: "JSON Lines" }));
  const apiJsonl = await api("/v1/orgs/acme/audit/export?as=ann&actor=ann&types=invite_issued,member_suspended");
  assert.equal(jsonl.text, apiJsonl.text);
  await page.goto(`${base}/console/orgs/acme/trail?actor=ann&types=member_suspended`);
  await shot("trail");
});

await step("the trail names a refused filter in a sentence", async () => {
  await page.goto(`${base}/console/orgs/acme/trail?from=yesterday-ish`);
  assert.match(await text("[role=alert]"), /the start of the time range/);
});

await step("a new event appears on the trail without a reload", async () => {
  await page.goto(`${base}/console/orgs/acme/trail`);
  await page.waitForSelector("table.trail[data-live]");
  await page.waitForTimeout(300);
  const r = await fetch(`${base}/v1/commands`, {
    method: "POST",
    headers: { Authorization: `Bearer ${tokens.service}`, "Content-Type": "application/json" },
    body: JSON.stringify({ as: "ann", do: { type: "reactivate_member", org: "acme", user: "sam" }, reason: "back from leave", request_id: "HR-138" }),
  });
  assert.equal(r.status, 200);
  const seq = (await r.json()).seq;
  await page.waitForSelector(`#event-${seq}`);
  assert.match(await text(`#event-${seq}`), /ann reactivated sam/);
  assert.match(await text("[data-live-status]"), /1 new event arrived/);
});

await step("integrity: the current digest, a kept digest checked, a forged one caught", async () => {
  await page.goto(`${base}/console/integrity`);
  const current = await text("#current-digest");
  assert.match(current, /^\d+:[0-9a-f]{64}$/);
  const kept = (await api("/v1/orgs/acme/audit/export?as=ann&types=member_suspended")).headers.get("permledger-digest");
  await page.fill("#digest", kept);
  await page.click("#digest ~ button");
  assert.match(await text("[role=status].ok"), /Unaltered\. The log extends/);
  const [seq, hash] = kept.split(":");
  const forged = `${seq}:${hash.slice(0, -1)}${hash.endsWith("0") ? "1" : "0"}`;
  await page.fill("#digest", forged);
  await page.click("#digest ~ button");
  assert.match(await text("[role=alert]"), /TAMPERED\. the log no longer extends the digest/);
  assert.match(await text("#h-state ~ p"), /Last verified .* TAMPERED/);
  await page.fill("#digest", "not a digest");
  await page.click("#digest ~ button");
  assert.match(await text("[role=alert]"), /is not `SEQ:HASH`/);
  await page.goto(`${base}/console/integrity?digest=${encodeURIComponent(kept)}`);
  await shot("integrity");
});

await step("a narrow window reads without sideways scrolling", async () => {
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto(`${base}/console/orgs/acme`);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 1, `the page is ${overflow}px wider than the window`);
  await shot("org-narrow");
  await page.setViewportSize({ width: 1280, height: 900 });
});

await step("signing out ends the session", async () => {
  await page.goto(`${base}/console`);
  await page.click("form.signout button");
  await page.waitForURL(`${base}/console/sign-in?out=1`);
  assert.match(await text("[role=status]"), /You are signed out/);
  await page.goto(`${base}/console/orgs/acme`);
  assert.match(page.url(), /\/console\/sign-in\?next=/);
});

await step("no page logged an error or threw", async () => {
  assert.deepEqual(problems, []);
});

await browser.close();
console.log(`all steps passed (${steps})`);
