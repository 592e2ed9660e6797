import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { mkdtemp, readFile, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { CliError, ensureDemoModel } from "@corral/cli";
import { sharedModelsDir } from "../support/models.js";

const STORIES_SHA256 = "270cba1bd5109f42d03350f60406024560464db173c0e387d91f0426d3bd256d";

/** Serves the real stories260K.gguf at /tinyllamas/stories260K.gguf, an HTML page at /html.gguf, 404 elsewhere. */
async function startModelServer(): Promise<{ server: Server; base: string; requests: string[] }> {
  const model = await readFile(join(sharedModelsDir(), "stories260K.gguf"));
  const requests: string[] = [];
  const server = createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    if (req.url === "/tinyllamas/stories260K.gguf") {
      res.writeHead(200, { "content-type": "application/octet-stream", "content-length": model.length });
      res.end(req.method === "HEAD" ? undefined : model);
    } else if (req.url === "/busy.gguf") {
      res.writeHead(503, { "content-type": "text/plain" });
      res.end("try later");
    } else if (req.url === "/html.gguf") {
      const page = "<html><body>rate limited</body></html>";
      res.writeHead(200, { "content-type": "text/html", "content-length": Buffer.byteLength(page) });
      res.end(req.method === "HEAD" ? undefined : page);
    } else {
      res.writeHead(404, { "content-type": "text/plain" });
      res.end("not found");
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  assert.ok(address && typeof address === "object");
  return { server, base: `http://127.0.0.1:${address.port}`, requests };
}

async function ggufFilesIn(dir: string): Promise<string[]> {
  if (!existsSync(dir)) return [];
  return (await readdir(dir)).filter((f) => f.endsWith(".gguf"));
}

describe("ensureDemoModel", () => {
  let served: Awaited<ReturnType<typeof startModelServer>>;
  let dir: string;
  before(async () => {
    served = await startModelServer();
    dir = await mkdtemp(join(tmpdir(), "corral-demo-model-"));
  });
  after(async () => {
    await new Promise((resolve) => served.server.close(resolve));
    await rm(dir, { recursive: true, force: true });
  });

  test("downloads the model into an empty (missing) folder and the file's sha256 matches", async () => {
    const modelsDir = join(dir, "fresh", "models");
    const lines: string[] = [];
    const result = await ensureDemoModel({
      modelsDir,
      url: `${served.base}/tinyllamas/stories260K.gguf`,
      logger: { info: (line) => lines.push(line) },
    });
    assert.equal(result.downloaded, true);
    assert.deepEqual(result.files, ["stories260K.gguf"]);
    const sha = createHash("sha256")
      .update(await readFile(join(modelsDir, "stories260K.gguf")))
      .digest("hex");
    assert.equal(sha, STORIES_SHA256);
    assert.ok(lines.some((l) => l.includes("downloading stories260K.gguf")));

    // A second call finds the model and downloads nothing.
    const before = served.requests.length;
    const again = await ensureDemoModel({ modelsDir, url: `${served.base}/tinyllamas/stories260K.gguf` });
    assert.equal(again.downloaded, false);
    assert.deepEqual(again.files, ["stories260K.gguf"]);
    assert.equal(served.requests.length, before);
  });

  test("a 404 says what failed and how to provide the model by hand, and leaves no file", async () => {
    const modelsDir = join(dir, "missing");
    await assert.rejects(
      ensureDemoModel({ modelsDir, url: `${served.base}/nope/stories260K.gguf` }),
      (error: unknown) => {
        assert.ok(error instanceof CliError);
        assert.match(error.message, /could not download the demo model from http:\/\/127\.0\.0\.1:\d+\/nope/);
        assert.match(error.message, /404/);
        assert.match(error.hint ?? "", /CORRAL_MODELS_DIR/);
        return true;
      },
    );
    assert.deepEqual(await ggufFilesIn(modelsDir), []);
  });

  test("a server error fails at once instead of retrying", async () => {
    const modelsDir = join(dir, "busy");
    await assert.rejects(ensureDemoModel({ modelsDir, url: `${served.base}/busy.gguf` }), /HTTP 503/);
  });

  test("a page that is not GGUF is rejected and removed", async () => {
    const modelsDir = join(dir, "html");
    await assert.rejects(ensureDemoModel({ modelsDir, url: `${served.base}/html.gguf` }), /not a GGUF file/);
    assert.deepEqual(await ggufFilesIn(modelsDir), []);
  });
});
