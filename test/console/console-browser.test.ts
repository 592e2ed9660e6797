import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import {
  ADMIN_KEY,
  LAB_KEY,
  OTHER_KEY,
  artifactsDir,
  chromiumPath,
  startConsoleStack,
  type ConsoleStack,
} from "./support.js";

// The console in a real headless Chromium (Debian's package, driven by playwright-core)
// against a real scheduler on real Redis and a real CPU worker running stories260K. One
// story in order: the queue is looked at before the worker starts (so jobs stay queued),
// then the worker runs the playground chat and a batch. Screenshots of each view go to
// test-results/console/.

const XSS_PROMPT = `<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2">Once upon a time`;

describe("the web console in a real browser", { timeout: 180_000 }, () => {
  let stack: ConsoleStack;
  let browser: Browser;
  let lab: BrowserContext;
  let page: Page;
  let shots: string;
  /** Every page error, console error and CSP violation seen by any page. */
  const problems: string[] = [];
  /** Every URL the browser asked for. */
  const urls: string[] = [];
  const labJobIds: string[] = [];
  let labBatchId = "";

  const watch = (p: Page) => {
    p.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
    p.on("console", (message) => {
      if (message.type() === "error") problems.push(`console: ${message.text()}`);
    });
    p.on("request", (request) => urls.push(request.url()));
  };
  const newPage = async (context: BrowserContext, width = 1280, height = 900) => {
    const p = await context.newPage();
    await p.setViewportSize({ width, height });
    watch(p);
    return p;
  };
  const signIn = async (p: Page, key: string) => {
    await p.goto(`${stack.url}/`);
    await p.getByLabel("API key").fill(key);
    await p.getByRole("button", { name: "Sign in" }).click();
  };
  const shot = (p: Page, name: string) => p.screenshot({ path: join(shots, `${name}.png`), fullPage: true });

  before(async () => {
    shots = await artifactsDir();
    stack = await startConsoleStack();
    // Chromium's sandbox needs user namespaces, which containers (and root) often lack.
    browser = await chromium.launch({ executablePath: chromiumPath(), args: ["--no-sandbox"] });
    lab = await browser.newContext();
    page = await newPage(lab);
  });
  after(async () => {
    await browser?.close();
    await stack?.close();
  });

  test("a wrong key shows a clear message and signs nobody in", async () => {
    await signIn(page, "sk-not-a-real-key");
    await page.getByRole("alert").filter({ hasText: "That API key was not accepted" }).waitFor();
    assert.equal(await page.evaluate("sessionStorage.length"), 0);
    await shot(page, "sign-in-wrong-key");
    problems.length = 0; // the 401 itself is logged by the browser as a failed resource
  });

  test("signing in keeps the key in sessionStorage only and shows the tenant", async () => {
    await signIn(page, LAB_KEY);
    await page.getByTestId("tenant").filter({ hasText: "lab" }).waitFor();
    assert.equal(await page.evaluate("sessionStorage.getItem('corral.apiKey')"), LAB_KEY);
    assert.equal(await page.evaluate("localStorage.length"), 0);
    assert.deepEqual(await lab.cookies(), []);
    await page.getByRole("heading", { name: "Cluster" }).waitFor();
    await page.getByText("No worker is online").waitFor();
  });

  test("the queue lists the tenant's queued jobs with their position, shows a <script> prompt as text, and cancels one", async () => {
    for (let i = 0; i < 2; i++) {
      const submitted = await stack.request("POST", "/v1/jobs", LAB_KEY, {
        model: "stories260K",
        prompt: XSS_PROMPT,
        max_tokens: 8,
      });
      assert.equal(submitted.status, 202);
      labJobIds.push(submitted.json.id);
    }
    await page.getByRole("link", { name: "Queue" }).click();
    const models = page.getByTestId("queue-models");
    await models.getByRole("row", { name: /stories260K\s+2\s+0/ }).waitFor();
    const mine = page.getByTestId("my-jobs");
    for (const id of labJobIds) await mine.locator(`tr[data-job-id="${id}"]`).waitFor();
    // Oldest first, each with its place in the lane.
    await mine.locator(`tr[data-job-id="${labJobIds[0]}"] td:nth-child(4)`).filter({ hasText: "1" }).waitFor();
    await mine.locator(`tr[data-job-id="${labJobIds[1]}"] td:nth-child(4)`).filter({ hasText: "2" }).waitFor();
    await shot(page, "queue");

    await page.getByRole("button", { name: `Cancel job ${labJobIds[1]}` }).click();
    await page.getByText(`Job ${labJobIds[1]} is cancelled.`).waitFor();
    await mine.locator(`tr[data-job-id="${labJobIds[1]}"]`).waitFor({ state: "detached" });
    assert.equal((await stack.request("GET", `/v1/jobs/${labJobIds[1]}`, LAB_KEY)).json.status, "cancelled");
    await models.getByRole("row", { name: /stories260K\s+1\s+0/ }).waitFor();
  });

  test("tenant B sees tenant A's jobs only as counts, never an id", async () => {
    const other = await browser.newContext();
    try {
      const b = await newPage(other, 390, 844); // a phone
      await signIn(b, OTHER_KEY);
      await b.getByTestId("tenant").filter({ hasText: "other" }).waitFor();
      await b.getByRole("link", { name: "Queue" }).click();
      await b
        .getByTestId("queue-models")
        .getByRole("row", { name: /stories260K\s+1\s+0/ })
        .waitFor();
      await b.getByText("You have no job queued or running.").waitFor();
      await shot(b, "queue-tenant-b-phone");
      // Nothing is wider than the phone: wide tables scroll inside their own box.
      for (const view of ["Cluster", "Queue", "Batches and quota", "Playground"]) {
        await b.getByRole("link", { name: view }).click();
        await b.getByRole("heading", { name: view, level: 1 }).waitFor();
        const [scrollWidth, innerWidth] = await b.evaluate<[number, number]>(
          "[document.documentElement.scrollWidth, window.innerWidth]",
        );
        assert.ok(scrollWidth <= innerWidth, `${view} is ${scrollWidth} px wide on a ${innerWidth} px phone`);
      }
      await b.getByRole("link", { name: "Queue" }).click();
      const text = await b.locator("body").innerText();
      for (const id of labJobIds) assert.ok(!text.includes(id), `tenant B's page shows ${id}`);
      assert.ok(!text.includes("Once upon a time"), "tenant B's page shows tenant A's prompt");
    } finally {
      await other.close();
    }
  });

  test("the cluster view shows the worker's slot, then the model it loaded", async () => {
    await stack.startWorker();
    await page.getByRole("link", { name: "Cluster" }).click();
    await page.getByTestId("slot").filter({ hasText: "console-test" }).first().waitFor({ timeout: 30_000 });
    // The queued job runs now; the slot loads stories260K for it.
    await page.getByTestId("loaded-model").filter({ hasText: "stories260K" }).waitFor({ timeout: 60_000 });
    await shot(page, "cluster");
  });

  test("a GPU slot shows its GPU, VRAM, utilisation and temperature; a late heartbeat is stale, an expired one offline", async () => {
    const now = Date.now();
    const gib = 1024 ** 3;
    await stack.heartbeat(
      {
        id: "gpu-box:gpu0",
        host: "gpu-box",
        slot: "gpu0",
        pid: 4242,
        version: "0.1.0",
        mode: "gpu",
        gpus: [
          {
            index: 0,
            uuid: "GPU-00000000-0000-0000-0000-000000000000",
            name: "NVIDIA H100 80GB HBM3",
            memory_total_bytes: 80 * gib,
            memory_used_bytes: 20 * gib,
            memory_free_bytes: 60 * gib,
            utilization_ratio: 0.42,
            temperature_celsius: 51,
            power_watts: 120,
            driver_version: "590.48.01",
            compute_capability: "9.0",
            mig_mode: "disabled",
            mig_instances: [],
          },
        ],
        cuda_version: "12.4",
        host_info: null,
        budget_total_bytes: 74 * gib,
        budget_free_bytes: 54 * gib,
        loaded_models: [],
        active_jobs: [],
        state: "idle",
        started_at: now - 600_000,
        updated_at: now - 30_000, // its slot stopped beating 30 s ago
      },
      60,
    );
    const card = page.getByTestId("slot").filter({ hasText: "gpu-box:gpu0" });
    await card.filter({ hasText: "stale" }).waitFor();
    const text = await card.innerText();
    assert.match(text, /GPU 0: NVIDIA H100 80GB HBM3/);
    assert.match(text, /utilisation 42%/);
    assert.match(text, /51 °C/);
    assert.match(text, /20\.0 GiB used, 60\.0 GiB free of 80\.0 GiB/);
    await shot(page, "cluster-gpu-stale");
    await stack.expire("gpu-box:gpu0");
    await card.filter({ hasText: "offline" }).waitFor();
    assert.match(await card.innerText(), /last seen/);
  });

  test("the recent jobs show the <script> prompt's job finished, and nothing ran as script", async () => {
    await page.getByRole("link", { name: "Queue" }).click();
    await page
      .locator(`tr[data-job-id="${labJobIds[0]}"]`)
      .filter({ hasText: "succeeded" })
      .waitFor({ timeout: 60_000 });
    assert.equal(await page.evaluate("window.__xss"), undefined);
  });

  test("the playground streams a chat from stories260K and says which slot ran it", async () => {
    await page.getByRole("link", { name: "Playground" }).click();
    await page.getByLabel("Model").selectOption("stories260K");
    await page.getByLabel("System prompt").fill("You tell short stories.");
    await page.getByLabel("Temperature").fill("0");
    await page.getByLabel("Max tokens").fill("200");
    await page.getByLabel("Message").fill(XSS_PROMPT);
    // Record what the streaming element shows while the answer arrives.
    // (Browser-side code as a string: the tests are typed without the DOM.)
    await page.evaluate(`{
      const seen = [];
      window.__seen = seen;
      new MutationObserver(() => {
        const text = document.querySelector('[data-testid="streaming"]')?.textContent ?? "";
        if (text && text !== "…" && seen.at(-1) !== text) seen.push(text);
      }).observe(document.body, { subtree: true, childList: true, characterData: true });
    }`);
    await page.getByRole("button", { name: "Send" }).click();
    const stats = page.getByTestId("stats");
    await stats.waitFor({ timeout: 60_000 });
    assert.match(await stats.innerText(), /tokens\/s/);
    assert.equal((await page.getByTestId("slot").innerText()).trim(), "console-test:cpu0");
    const seen = await page.evaluate<string[]>("window.__seen");
    assert.ok(seen.length >= 2, `the answer did not arrive in pieces: ${seen.length}`);
    const turns = page.getByTestId("transcript").locator("li");
    assert.equal(await turns.count(), 2);
    // The prompt is shown as the text it is; the answer is real text from the model.
    assert.equal((await turns.nth(0).locator("pre").innerText()).trim(), XSS_PROMPT);
    const answer = (await turns.nth(1).locator("pre").innerText()).trim();
    assert.ok(answer.length > 10, `answer: ${answer}`);
    assert.ok(answer.startsWith(seen[0]!.trim().slice(0, 5)), "the answer does not continue what was streamed");
    assert.equal(await page.evaluate("window.__xss"), undefined);
    await shot(page, "playground");
  });

  test("the playground's JSON schema box makes the answer JSON of that schema", async () => {
    await page.getByRole("button", { name: "Clear chat" }).click();
    await page.getByLabel("Structured output (JSON schema)").check();
    await page
      .getByLabel("JSON schema", { exact: true })
      .fill(JSON.stringify({ type: "object", properties: { happy: { type: "boolean" } }, required: ["happy"] }));
    await page.getByLabel("Message").fill("Is the cat happy?");
    await page.getByRole("button", { name: "Send" }).click();
    await page.getByTestId("stats").waitFor({ timeout: 60_000 });
    const answer = await page.getByTestId("transcript").locator("li").nth(1).locator("pre").innerText();
    assert.equal(typeof JSON.parse(answer).happy, "boolean", answer);
    await shot(page, "playground-json-schema");
  });

  test("a JSONL upload starts a batch whose progress reaches 100%, with its output to download", async () => {
    await page.getByRole("link", { name: "Batches and quota" }).click();
    const lines = [0, 1, 2].map((i) =>
      JSON.stringify({
        custom_id: `line-${i}`,
        method: "POST",
        url: "/v1/chat/completions",
        body: { model: "stories260K", messages: [{ role: "user", content: `Story ${i}` }], max_tokens: 8 },
      }),
    );
    await page.getByLabel("JSONL file").setInputFiles({
      name: "stories.jsonl",
      mimeType: "application/jsonl",
      buffer: Buffer.from(lines.join("\n") + "\n"),
    });
    await page.getByRole("button", { name: "Upload and start" }).click();
    const started = page.getByText(/Batch batch_\S+ started\./);
    await started.waitFor();
    labBatchId = /Batch (batch_\S+) started/.exec(await started.innerText())![1]!;
    const card = page.locator(`[data-batch-id="${labBatchId}"]`);
    await card.filter({ hasText: "100%" }).filter({ hasText: "completed" }).waitFor({ timeout: 90_000 });
    assert.match(await card.innerText(), /3 done, 0 failed of 3/);
    const download = page.waitForEvent("download");
    await card.getByRole("button", { name: "Download output" }).click();
    const file = await download;
    assert.equal(file.suggestedFilename(), `${labBatchId}-output.jsonl`);
    await page
      .getByTestId("quota")
      .getByText(/Tokens today/)
      .waitFor();
    await shot(page, "batches");
  });

  test("tenant B sees none of tenant A's ids in any view", async () => {
    const other = await browser.newContext();
    try {
      const b = await newPage(other);
      await signIn(b, OTHER_KEY);
      await b.getByTestId("tenant").filter({ hasText: "other" }).waitFor();
      for (const view of ["Cluster", "Queue", "Batches and quota"]) {
        await b.getByRole("link", { name: view }).click();
        await b.getByRole("heading", { name: view, level: 1 }).waitFor();
        await b.waitForTimeout(500);
        const text = await b.locator("body").innerText();
        for (const id of [...labJobIds, labBatchId]) assert.ok(!text.includes(id), `${view} shows ${id} to tenant B`);
      }
      await b.getByText("No batch yet.").waitFor();
    } finally {
      await other.close();
    }
  });

  test("keyboard only: sign in with Enter, reach a view's link with Tab, open it with Enter", async () => {
    const context = await browser.newContext();
    try {
      const k = await newPage(context);
      await k.goto(`${stack.url}/console/`);
      // The key field has the focus.
      await k.keyboard.type(OTHER_KEY);
      await k.keyboard.press("Enter");
      await k.getByTestId("tenant").filter({ hasText: "other" }).waitFor();
      let focused = "";
      for (let i = 0; i < 10 && focused !== "Playground"; i++) {
        await k.keyboard.press("Tab");
        focused = await k.evaluate<string>("document.activeElement?.textContent?.trim() ?? ''");
      }
      assert.equal(focused, "Playground");
      await k.keyboard.press("Enter");
      await k.getByRole("heading", { name: "Playground", level: 1 }).waitFor();
      // The focus moved to the view's content.
      assert.equal(await k.evaluate<string>("document.activeElement?.id"), "main");
    } finally {
      await context.close();
    }
  });

  test("the admin sees the slots grouped by host, with the host's details", async () => {
    const context = await browser.newContext();
    try {
      const a = await newPage(context);
      await signIn(a, ADMIN_KEY);
      await a.getByTestId("tenant").filter({ hasText: "admin" }).waitFor();
      // Slots are grouped by host (the worker id), with the host's CPU, cores, RAM and OS.
      await a.getByRole("heading", { name: "console-test", level: 2 }).waitFor();
      await a.getByText(/\d+ cores · .* RAM/).waitFor();
      assert.ok(!(await a.getByText("host details are shown to the admin only").isVisible()));
      await shot(a, "cluster-admin");
    } finally {
      await context.close();
    }
  });

  test("no key in any URL, no page error, no CSP violation", async () => {
    for (const url of urls) {
      assert.ok(!url.includes(LAB_KEY) && !url.includes(OTHER_KEY), `a key in ${url}`);
      assert.ok(url.startsWith(stack.url) || url.startsWith("blob:") || url.startsWith("data:"), `off-site: ${url}`);
    }
    assert.deepEqual(problems, []);
  });
});
