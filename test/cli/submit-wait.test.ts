// `corral submit --wait` against a scripted scheduler: what it prints while the job is queued.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { queuedJobRecord, type JobRecord } from "@corral/shared";
import { corralEnv, runCorral } from "./run-corral.js";

const ID = "job_DAQXTS3BHL90ou8Q1pDZatro";
const base = queuedJobRecord({
  id: ID,
  tenant: "default",
  model: "stories260K",
  source: "native",
  priority: 50,
  created_at: Date.now(),
});

describe("corral submit --wait prints the queue position and estimated start while the job is queued", () => {
  let server: Server;
  let url: string;
  /** The answers to GET /v1/jobs/:id, in order, and the `wait` each GET asked for. */
  let answers: (() => JobRecord)[] = [];
  const waits: (string | null)[] = [];

  before(async () => {
    server = createServer((req, res) => {
      const reqUrl = new URL(req.url ?? "/", "http://x");
      let body: JobRecord;
      if (req.method === "POST" && reqUrl.pathname === "/v1/jobs") body = base;
      else if (req.method === "GET" && reqUrl.pathname === `/v1/jobs/${ID}`) {
        waits.push(reqUrl.searchParams.get("wait"));
        body = (answers.shift() ?? (() => ({ ...base, status: "failed" as const })))();
      } else {
        res.writeHead(404).end();
        return;
      }
      req.resume();
      req.on("end", () => {
        res.writeHead(req.method === "POST" ? 202 : 200, { "content-type": "application/json" });
        res.end(JSON.stringify(body));
      });
    });
    await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    await new Promise((done) => server.close(done));
  });

  test("a new position or status is printed once; the text at the end", async () => {
    const queued = (position: number, inSeconds?: number) => () => ({
      ...base,
      queue_position: position,
      ...(inSeconds !== undefined ? { estimated_start_at: Date.now() + inSeconds * 1000 } : {}),
    });
    answers = [
      queued(3, 40),
      queued(3, 38),
      queued(1),
      () => ({ ...base, status: "running" as const, started_at: Date.now() }),
      () => ({
        ...base,
        status: "succeeded" as const,
        result: {
          text: "Once upon a time there was a fox.",
          finish_reason: "stop" as const,
          usage: { prompt_tokens: 5, completion_tokens: 8 },
          timings: { queue_ms: 1, load_ms: 1, ttft_ms: 1, generation_ms: 1 },
        },
      }),
    ];
    const result = await runCorral(
      ["submit", "--wait", "--model", "stories260K", "--prompt", "Once upon a time"],
      corralEnv({ CORRAL_URL: url }),
    );
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, "Once upon a time there was a fox.\n");
    const lines = result.stderr.trim().split("\n");
    assert.equal(lines.length, 4, result.stderr);
    assert.equal(lines[0], `job ${ID} queued; waiting…`);
    assert.match(
      lines[1]!,
      new RegExp(`^job ${ID} queued: position 3, estimated start in ~(39|40) s \\(\\d\\d:\\d\\d:\\d\\d UTC\\)$`),
    );
    assert.equal(lines[2], `job ${ID} queued: position 1`);
    assert.equal(lines[3], `job ${ID} running`);
    // The first look is at once; short polls while queued, long ones once it runs.
    assert.deepEqual(waits, [null, "5", "5", "5", "30"]);
  });
});
