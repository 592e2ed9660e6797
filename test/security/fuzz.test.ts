import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  API_KEY,
  OTHER_KEY,
  STORIES,
  chatLine,
  jsonl,
  startBatchStack,
  type BatchStack,
} from "../batch/support/harness.js";

/**
 * An HTTP fuzzer over every route of a real scheduler (real Redis, a real CPU worker on the
 * tiny model). Requests are mutated from valid ones by a seeded generator, so a run is
 * repeatable: CORRAL_FUZZ_SEED picks another sequence, CORRAL_FUZZ_REQUESTS another length.
 * Pass: no response is a 5xx, every request answers within its time limit, and the
 * scheduler still serves afterwards.
 */

const SEED = Number(process.env.CORRAL_FUZZ_SEED ?? 1616);
const REQUESTS = Number(process.env.CORRAL_FUZZ_REQUESTS ?? 2000);
const CONCURRENCY = 8;
/** Longest a request may take before it counts as a hang. */
const REQUEST_LIMIT_MS = 20_000;
const ADMIN_KEY = "sk-corral-admin-fuzz-0001";

/** mulberry32: a small seeded PRNG. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

interface FuzzRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string | FormData;
}

interface Template {
  method: string;
  path: string;
  /** JSON body (mutated as a value, then sometimes as text). */
  body?: () => Json;
  /** A multipart upload. */
  upload?: boolean;
}

const INTERESTING: Json[] = [
  null,
  true,
  false,
  0,
  -1,
  1,
  1.5,
  2 ** 31,
  2 ** 53 + 1,
  -1e308,
  1e308,
  "",
  " ",
  "a",
  "x".repeat(5000),
  "\u0000",
  "\ud800",
  "中文",
  "%ZZ",
  "../../etc/passwd",
  "<script>",
  "stories260K",
  "no-such-model",
  "json_schema",
  [],
  [null],
  [[[]]],
  {},
  { type: "json_schema" },
  { role: "user", content: "hi" },
  { type: "json_schema", json_schema: { name: "s", schema: { type: "string", pattern: "a" } } },
  {
    type: "json_schema",
    json_schema: { name: "s", schema: { type: "object", properties: { a: { type: "string" } } } },
  },
];

const ID_SHAPES = [
  "job_x",
  "job_AAAAAAAAAAAAAAAAAAAAAAAA",
  "file-0123456789abcdef01234567",
  "batch_0123456789abcdef01234567",
  "%ZZ",
  "%",
  "%E4%B8%AD",
  "%00",
  "..%2F..%2Fetc",
  "a".repeat(300),
  "stories260K",
  "x%2Fy",
];

const chat = (): Json => ({
  model: STORIES,
  messages: [{ role: "user", content: "Once upon a time" }],
  max_tokens: 4,
  temperature: 0,
});

const TEMPLATES: Template[] = [
  { method: "POST", path: "/v1/jobs", body: () => ({ model: STORIES, prompt: "Once", max_tokens: 4 }) },
  { method: "POST", path: "/v1/jobs", body: () => ({ model: STORIES, messages: [{ role: "user", content: "hi" }] }) },
  { method: "GET", path: "/v1/jobs" },
  { method: "GET", path: "/v1/jobs/{id}" },
  { method: "DELETE", path: "/v1/jobs/{id}" },
  { method: "POST", path: "/v1/chat/completions", body: chat },
  { method: "POST", path: "/v1/chat/completions", body: () => ({ ...(chat() as object), stream: true }) },
  { method: "POST", path: "/v1/completions", body: () => ({ model: STORIES, prompt: "Once", max_tokens: 4 }) },
  { method: "POST", path: "/v1/embeddings", body: () => ({ model: STORIES, input: "Once" }) },
  { method: "GET", path: "/v1/models" },
  { method: "GET", path: "/v1/models/{id}" },
  { method: "GET", path: "/v1/workers" },
  { method: "GET", path: "/v1/quota" },
  { method: "POST", path: "/v1/files", upload: true },
  { method: "GET", path: "/v1/files" },
  { method: "GET", path: "/v1/files/{id}" },
  { method: "GET", path: "/v1/files/{id}/content" },
  { method: "DELETE", path: "/v1/files/{id}" },
  {
    method: "POST",
    path: "/v1/batches",
    body: () => ({ input_file_id: "{file}", endpoint: "/v1/chat/completions", completion_window: "24h" }),
  },
  { method: "GET", path: "/v1/batches" },
  { method: "GET", path: "/v1/batches/{id}" },
  { method: "POST", path: "/v1/batches/{id}/cancel" },
  { method: "GET", path: "/healthz" },
  { method: "GET", path: "/readyz" },
  { method: "GET", path: "/metrics" },
  { method: "GET", path: "/admin/queues" },
  { method: "GET", path: "/admin/queues/api/queues" },
  { method: "PUT", path: "/admin/queues/api/queues/{id}/pause" },
  { method: "GET", path: "/nope" },
];

/** Builds request `n` of the run from `random`; `known` holds real ids seen so far. */
function mutate(random: () => number, known: { jobs: string[]; files: string[]; batches: string[] }): FuzzRequest {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const chance = (p: number) => random() < p;
  const template = pick(TEMPLATES);
  const id = () => {
    const real = [...known.jobs, ...known.files, ...known.batches];
    return chance(0.4) && real.length > 0 ? pick(real) : pick(ID_SHAPES);
  };
  let path = template.path.replace("{id}", () => id());
  if (chance(0.3)) {
    const queries = [
      "wait=abc",
      "wait=-1",
      "wait=1",
      "wait=1e9",
      "wait=61",
      "limit=0",
      "limit=99999999",
      "limit=abc",
      "after=%ZZ",
      "after=file-x",
      "order=sideways",
      "purpose=batch",
      "status=running",
      "a[b][c]=1",
      "x=" + "y".repeat(2000),
    ];
    path += `?${pick(queries)}${chance(0.3) ? `&${pick(queries)}` : ""}`;
  }
  const method = chance(0.08) ? pick(["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"]) : template.method;
  const key = chance(0.1)
    ? pick(["", "Bearer sk-wrong-0123456789abcdef", `Basic ${API_KEY}`, `Bearer ${ADMIN_KEY}`, `Bearer ${OTHER_KEY}`])
    : `Bearer ${API_KEY}`;
  const headers: Record<string, string> = {};
  if (key) headers.authorization = key;

  if (template.upload) {
    const form = new FormData();
    const lines = [chatLine("a"), chatLine(chance(0.3) ? "a" : "b")];
    let content = jsonl(lines);
    if (chance(0.3)) content = content.slice(0, Math.floor(random() * content.length));
    if (chance(0.1)) content = "\u0000\uffff{{{\n";
    if (!chance(0.1)) form.append("purpose", chance(0.8) ? "batch" : pick(["fine-tune", "", "batch_output"]));
    if (chance(0.2)) form.append("expires_after[anchor]", pick(["created_at", "later", ""]));
    if (chance(0.2)) form.append("expires_after[seconds]", pick(["3600", "1", "-5", "abc", "99999999999"]));
    if (!chance(0.1))
      form.append(
        chance(0.9) ? "file" : "other",
        new Blob([content]),
        pick(["in.jsonl", "中文.jsonl", "", "../x", 'a"b.jsonl']),
      );
    return { method, path, headers, body: form };
  }
  if (!template.body) return { method, path, headers };

  let value = template.body();
  const file = known.files.length > 0 ? pick(known.files) : "file-none";
  value = JSON.parse(JSON.stringify(value).replace("{file}", file)) as Json;
  // Mutate fields of the object: drop, replace, add.
  const rounds = Math.floor(random() * 4);
  for (let i = 0; i < rounds && value && typeof value === "object" && !Array.isArray(value); i++) {
    const keys = Object.keys(value);
    const roll = random();
    if (roll < 0.25 && keys.length > 0) delete value[pick(keys)];
    else if (roll < 0.7 && keys.length > 0) value[pick(keys)] = pick(INTERESTING);
    else
      value[
        pick([
          "n",
          "stream",
          "tools",
          "response_format",
          "priority",
          "metadata",
          "max_tokens",
          "stop",
          "seed",
          "logprobs",
          "x",
        ])
      ] = pick(INTERESTING);
  }
  if (chance(0.05)) value = pick(INTERESTING);
  let text = JSON.stringify(value);
  if (chance(0.1)) text = text.slice(0, Math.floor(random() * text.length));
  if (chance(0.03)) text = `${"[".repeat(5000)}${"]".repeat(5000)}`;
  if (chance(0.02)) text = "x".repeat(1024 * 1024 + 10);
  headers["content-type"] = chance(0.9)
    ? "application/json"
    : pick(["text/plain", "application/x-www-form-urlencoded", "", "application/json; charset=latin1"]);
  if (headers["content-type"] === "") delete headers["content-type"];
  return { method, path, headers, body: text };
}

/** The `id` of a JSON object body (a job, file or batch just made), else null. */
function idOf(text: string): string | null {
  try {
    const id = (JSON.parse(text) as { id?: unknown } | null)?.id;
    return typeof id === "string" ? id : null;
  } catch {
    return null; // not JSON: a file's content, a HEAD, the metrics
  }
}

describe("HTTP fuzzing", () => {
  let stack: BatchStack;

  before(async () => {
    stack = await startBatchStack({
      env: {
        CORRAL_ADMIN_KEY: ADMIN_KEY,
        CORRAL_REQUEST_TIMEOUT_MS: "15s",
        CORRAL_MAX_QUEUED_PER_TENANT: "50",
        CORRAL_LOG_LEVEL: process.env.CORRAL_TEST_LOG_LEVEL ?? "silent",
      },
    });
  });
  after(async () => {
    await stack?.close();
  });

  test(
    `${REQUESTS} mutated requests (seed ${SEED}) across every route: no 5xx, no hang, still serving`,
    { timeout: 180_000 },
    async () => {
      const random = rng(SEED);
      const known = { jobs: [] as string[], files: [] as string[], batches: [] as string[] };
      const requests: FuzzRequest[] = [];
      const failures: string[] = [];
      const statuses = new Map<number, number>();
      let next = 0;
      const worker = async () => {
        for (;;) {
          const n = next++;
          if (n >= REQUESTS) return;
          const request = mutate(random, known);
          requests.push(request);
          const label = `#${n} ${request.method} ${request.path.slice(0, 120)}`;
          try {
            const response = await fetch(`${stack.url}${request.path}`, {
              method: request.method,
              headers: request.headers,
              ...(request.body !== undefined && request.method !== "GET" && request.method !== "HEAD"
                ? { body: request.body }
                : {}),
              signal: AbortSignal.timeout(REQUEST_LIMIT_MS),
            });
            const text = await response.text();
            statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
            if (response.status >= 500) failures.push(`${label} → ${response.status} ${text.slice(0, 200)}`);
            if (response.status < 300) {
              const id = idOf(text);
              if (id !== null) {
                if (id.startsWith("job_")) known.jobs.push(id);
                else if (id.startsWith("file-")) known.files.push(id);
                else if (id.startsWith("batch_")) known.batches.push(id);
              }
            }
          } catch (error) {
            const name = (error as Error).name;
            failures.push(
              `${label} → ${name === "TimeoutError" ? `no answer within ${REQUEST_LIMIT_MS} ms` : (error as Error).message}`,
            );
          }
        }
      };
      await Promise.all(Array.from({ length: CONCURRENCY }, () => worker()));

      const summary = [...statuses.entries()]
        .sort(([a], [b]) => a - b)
        .map(([s, c]) => `${s}:${c}`)
        .join(" ");
      assert.equal(requests.length, REQUESTS);
      assert.deepEqual(failures, [], `status counts ${summary}`);
      assert.ok(statuses.size > 5, `the requests reached many outcomes: ${summary}`);

      // Still serving: health, and a real job end to end.
      assert.equal((await fetch(`${stack.url}/healthz`)).status, 200);
      const job = await fetch(`${stack.url}/v1/jobs?wait=30`, {
        method: "POST",
        headers: { authorization: `Bearer ${OTHER_KEY}`, "content-type": "application/json" },
        body: JSON.stringify({ model: STORIES, prompt: "Once upon a time", max_tokens: 4, temperature: 0 }),
      });
      const record = (await job.json()) as { status: string };
      assert.equal(job.status, 200, JSON.stringify(record));
      assert.equal(record.status, "succeeded");
    },
  );
});
