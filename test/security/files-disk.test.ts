import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readdir, rm, utimes, writeFile } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Readable } from "node:stream";
import { pino } from "pino";
import { FileService, FileStore } from "@corral/scheduler";
import { API_KEY, OTHER_KEY, startBatchStack, type BatchStack } from "../batch/support/harness.js";

const form = (content: string, fields: Record<string, string> = { purpose: "batch" }, filename = "in.jsonl") => {
  const data = new FormData();
  for (const [name, value] of Object.entries(fields)) data.append(name, value);
  data.append("file", new Blob([content]), filename);
  return data;
};

describe("files cannot fill the disk", () => {
  let stack: BatchStack;
  const filesDir = () => join(stack.dataDir, "files");
  const stored = async () => (await readdir(filesDir()).catch(() => [] as string[])).sort();
  const upload = async (body: FormData, key = API_KEY) => {
    const response = await fetch(`${stack.url}/v1/files`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}` },
      body,
    });
    return { status: response.status, json: (await response.json()) as any }; // eslint-disable-line @typescript-eslint/no-explicit-any
  };
  const line = (n: number) => `${JSON.stringify({ custom_id: `c${n}`, pad: "x".repeat(80) })}\n`;
  const content = (bytes: number) => {
    let text = "";
    for (let n = 0; text.length < bytes; n++) text += line(n);
    return text;
  };

  before(async () => {
    stack = await startBatchStack({
      worker: false,
      env: { CORRAL_TENANT_FILE_BYTES: "3000", CORRAL_FILE_SWEEP_MS: "200", CORRAL_FILE_ORPHAN_AGE: "1h" },
    });
  });
  after(async () => {
    await stack?.close();
  });

  for (const [name, cut] of [
    ["inside the file part", (file: string) => file.slice(0, 50)],
    ["after the file part, before the form ends", (file: string) => `${file}\r\n--BOUNDARY\r\nContent-Disp`],
  ] as const) {
    test(`a client that disconnects ${name} leaves no file behind`, async () => {
      const before = await stored();
      const file = content(500);
      const head =
        '--BOUNDARY\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n' +
        '--BOUNDARY\r\nContent-Disposition: form-data; name="file"; filename="in.jsonl"\r\n' +
        "Content-Type: application/jsonl\r\n\r\n";
      const body = head + cut(file);
      const url = new URL(stack.url);
      const socket = connect(Number(url.port), url.hostname);
      socket.on("error", () => {});
      await new Promise((resolve) => socket.once("connect", resolve));
      socket.write(
        `POST /v1/files HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${API_KEY}\r\n` +
          `Content-Type: multipart/form-data; boundary=BOUNDARY\r\nContent-Length: ${body.length + 5000}\r\n\r\n${body}`,
      );
      await sleep(500); // the server has stored what came
      socket.destroy();
      let now = await stored();
      for (let i = 0; i < 30 && now.length !== before.length; i++) {
        await sleep(100);
        now = await stored();
      }
      assert.deepEqual(now, before);
    });
  }

  test("expires_after sets expires_at; a bad anchor or duration is a 400", async () => {
    const ok = await upload(
      form(line(1), { purpose: "batch", "expires_after[anchor]": "created_at", "expires_after[seconds]": "3600" }),
    );
    assert.equal(ok.status, 200, JSON.stringify(ok.json));
    assert.equal(ok.json.expires_at, ok.json.created_at + 3600);
    const badAnchor = await upload(
      form(line(1), { purpose: "batch", "expires_after[anchor]": "last_used", "expires_after[seconds]": "3600" }),
    );
    assert.equal(badAnchor.status, 400);
    assert.equal(badAnchor.json.error.param, "expires_after.anchor");
    const tooShort = await upload(
      form(line(1), { purpose: "batch", "expires_after[anchor]": "created_at", "expires_after[seconds]": "10" }),
    );
    assert.equal(tooShort.status, 400);
    assert.equal(tooShort.json.error.param, "expires_after.seconds");
    await fetch(`${stack.url}/v1/files/${ok.json.id}`, {
      method: "DELETE",
      headers: { authorization: `Bearer ${API_KEY}` },
    });
  });

  test("an expired file is swept: its metadata, content and quota use go", async () => {
    const file = await upload(
      form(line(2), { purpose: "batch", "expires_after[anchor]": "created_at", "expires_after[seconds]": "3600" }),
    );
    assert.equal(file.status, 200);
    // Let it expire now rather than in an hour.
    await stack.redis.zadd(stack.keys.fileExpiry, Date.now() - 1, file.json.id);
    // The sweep deletes the metadata first, then the quota use and the content: wait for all three.
    const state = async () => ({
      status: (
        await fetch(`${stack.url}/v1/files/${file.json.id}`, { headers: { authorization: `Bearer ${API_KEY}` } })
      ).status,
      onDisk: (await stored()).includes(file.json.id),
      bytes: Number((await stack.redis.hget(stack.keys.fileBytes, "lab")) ?? 0),
    });
    const gone = { status: 404, onDisk: false, bytes: 0 };
    let now = await state();
    for (let i = 0; i < 50 && JSON.stringify(now) !== JSON.stringify(gone); i++) {
      await sleep(100);
      now = await state();
    }
    assert.deepEqual(now, gone);
  });

  test("a tenant over its file byte quota gets a 413 naming the limit, and nothing is kept; other tenants are not affected", async () => {
    const first = await upload(form(content(2000)));
    assert.equal(first.status, 200, JSON.stringify(first.json));
    const before = await stored();
    const second = await upload(form(content(2000)));
    assert.equal(second.status, 413, JSON.stringify(second.json));
    assert.equal(second.json.error.code, "file_quota_exceeded");
    assert.match(second.json.error.message, /3000 bytes \(CORRAL_TENANT_FILE_BYTES\)/);
    assert.deepEqual(await stored(), before);
    assert.equal((await upload(form(content(2000)), OTHER_KEY)).status, 200);
    await fetch(`${stack.url}/v1/files/${first.json.id}`, {
      method: "DELETE",
      headers: { authorization: `Bearer ${API_KEY}` },
    });
    assert.equal((await upload(form(content(2000)))).status, 200);
  });

  test("the sweep deletes unregistered files older than the orphan age, and keeps registered ones", async () => {
    const kept = await upload(form(line(3)), OTHER_KEY);
    assert.equal(kept.status, 200);
    const old = new Date(Date.now() - 2 * 3600 * 1000);
    await writeFile(join(filesDir(), "file-0123456789abcdef01234567"), "orphan\n");
    await writeFile(join(filesDir(), "file-0123456789abcdef76543210.part"), "half");
    await writeFile(join(filesDir(), "file-fresh0123456789abcdef.part"), "new");
    for (const name of ["file-0123456789abcdef01234567", "file-0123456789abcdef76543210.part", kept.json.id]) {
      await utimes(join(filesDir(), name), old, old);
    }
    let names = await stored();
    for (let i = 0; i < 50 && names.includes("file-0123456789abcdef01234567"); i++) {
      await sleep(100);
      names = await stored();
    }
    assert.ok(!names.includes("file-0123456789abcdef01234567"), names.join(" "));
    assert.ok(!names.includes("file-0123456789abcdef76543210.part"), names.join(" "));
    assert.ok(names.includes("file-fresh0123456789abcdef.part"), "a fresh partial file stays");
    assert.ok(names.includes(kept.json.id), "a registered file stays");
  });

  test("batch output files expire after CORRAL_OUTPUT_FILE_TTL (30 days by default)", async () => {
    const dir = await mkdtemp(join(tmpdir(), "corral-files-"));
    try {
      const files = new FileService({
        redis: stack.redis,
        keys: stack.keys,
        store: await FileStore.create({ dir }),
        logger: pino({ level: "silent" }),
      });
      const output = await files.create("lab", {
        filename: "out.jsonl",
        purpose: "batch_output",
        content: Readable.from([line(1)]),
      });
      assert.equal(output.expires_at, output.created_at + 30 * 24 * 3600);
      await files.remove("lab", output.id);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
