import { mkdir, mkdtemp, readFile, readdir, rm, stat, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, beforeEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { pino } from "pino";
import { scanModels } from "@corral/scheduler";
import { spawnSync } from "node:child_process";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { lineProgress, pullModel, PullError, type PullProgress } from "@corral/cli";
import { sharedModelsDir } from "../support/models.js";
import { sha256, startMockHuggingFace, type MockHuggingFace } from "../support/mock-hugging-face.js";
import { corralEnv, runCorral, STACK_LINE } from "./run-corral.js";

const STORIES_SHA = "270cba1bd5109f42d03350f60406024560464db173c0e387d91f0426d3bd256d";
const TOKEN = "hf_testTOKENnotARealOne0123456789";

const silentProgress = (): PullProgress & { notes: string[]; starts: { name: string; from: number }[] } => {
  const notes: string[] = [];
  const starts: { name: string; from: number }[] = [];
  return {
    notes,
    starts,
    start: (name, _total, from) => void starts.push({ name, from }),
    advance: () => undefined,
    finish: () => undefined,
    note: (message) => void notes.push(message),
  };
};

/** Every file name in `dir`, dot files included (a left-over .part shows up here). */
const allFiles = async (dir: string) => (await readdir(dir).catch(() => [] as string[])).sort();

describe("corral models pull against a local Hugging Face stand-in", () => {
  let hf: MockHuggingFace;
  let stories: Buffer;
  let tiny: Buffer;
  let whisper: Buffer;
  let root: string;
  let dir: string;
  let n = 0;

  before(async () => {
    stories = await readFile(join(sharedModelsDir(), "stories260K.gguf"));
    tiny = await readFile(join(sharedModelsDir(), "llama-2-tiny-random.gguf"));
    whisper = await readFile(join(sharedModelsDir(), "whisper", "for-tests-ggml-tiny.en.bin"));
    root = await mkdtemp(join(tmpdir(), "corral-pull-"));
    // A synthetic split model: two byte ranges of stories260K, each starting with the GGUF magic
    // (as gguf-split's parts do). It tests the transfer, not a loadable split.
    const half = Math.floor(stories.length / 2);
    const part1 = stories.subarray(0, half);
    const part2 = Buffer.concat([Buffer.from("GGUF"), stories.subarray(half)]);
    hf = await startMockHuggingFace({
      "ggml-org/tiny": {
        files: {
          "stories260K.gguf": { content: stories },
          "llama-2-tiny-random-F16.gguf": { content: tiny },
          "sub/stories260K-F32.gguf": { content: stories },
          "split/big-Q8_0-00001-of-00002.gguf": { content: part1 },
          "split/big-Q8_0-00002-of-00002.gguf": { content: part2 },
          "README.md": { content: Buffer.from("# tiny\n") },
        },
      },
      "ggml-org/flaky": { files: { "stories260K.gguf": { content: stories, dropAfterBytes: 400_000, dropTimes: 1 } } },
      "ggml-org/dead": { files: { "stories260K.gguf": { content: stories, dropAfterBytes: 300_000, dropTimes: 99 } } },
      "ggml-org/corrupt": { files: { "stories260K.gguf": { content: stories, advertisedSha256: "0".repeat(64) } } },
      "ggml-org/huge": { files: { "big.gguf": { content: stories, advertisedSize: 2 ** 53 - 1 } } },
      "ggml-org/html": {
        files: { "model.gguf": { content: stories, serveInstead: Buffer.from("<html>oops</html>") } },
      },
      "meta/gated": { files: { "stories260K.gguf": { content: stories } }, gatedToken: TOKEN },
      "ggerganov/whisper.cpp": {
        files: {
          "ggml-tiny.en.bin": { content: whisper },
          "ggml-fake.bin": { content: Buffer.from("GGUF but named .bin, or an HTML page") },
        },
      },
    });
  });
  after(async () => {
    await hf.close();
    await rm(root, { recursive: true, force: true });
  });
  beforeEach(() => {
    dir = join(root, `models-${++n}`);
    hf.requests.length = 0;
  });

  const pull = (ref: string, extra: Partial<Parameters<typeof pullModel>[1]> = {}) =>
    pullModel(ref, { modelsDir: dir, endpoint: hf.endpoint, progress: silentProgress(), retryDelayMs: 10, ...extra });

  const rejectsWith = async (promise: Promise<unknown>, code: string): Promise<PullError> => {
    const error = await promise.then(
      () => assert.fail("expected the pull to fail"),
      (e: unknown) => e,
    );
    assert.ok(error instanceof PullError, `a PullError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    return error;
  };

  test("hf:<owner>/<repo>/<file>.gguf downloads the file, checks Hugging Face's sha256, and the catalog serves it", async () => {
    const result = await pull("hf:ggml-org/tiny/stories260K.gguf");
    assert.equal(result.alreadyPresent, false);
    assert.deepEqual(
      result.files.map((f) => [f.name, f.size, f.sha256, f.verified]),
      [["stories260K.gguf", 1_185_376, STORIES_SHA, true]],
    );
    assert.deepEqual(await allFiles(dir), ["stories260K.gguf"]);
    assert.equal(sha256(await readFile(join(dir, "stories260K.gguf"))), STORIES_SHA);
    const catalog = await scanModels({ modelsDir: dir, logger: pino({ level: "silent" }) });
    assert.deepEqual(
      catalog.map((m) => [m.id, m.parameters]),
      [["stories260K", 292_800]],
    );
    // The body came from the CDN (another origin) after the hub's 302.
    assert.ok(hf.requests.some((r) => r.server === "cdn" && r.method === "GET"));
    const again = await pull("hf:ggml-org/tiny/stories260K.gguf");
    assert.equal(again.alreadyPresent, true);
  });

  test("hf:<owner>/<repo>/ggml-*.bin pulls a whisper.cpp model the catalog serves as kind whisper; a .bin without its magic is removed", async () => {
    const result = await pull("hf:ggerganov/whisper.cpp/ggml-tiny.en.bin");
    assert.deepEqual(
      result.files.map((f) => [f.name, f.size, f.verified]),
      [["ggml-tiny.en.bin", whisper.length, true]],
    );
    const catalog = await scanModels({ modelsDir: dir, logger: pino({ level: "silent" }) });
    assert.deepEqual(
      catalog.map((m) => [m.id, m.kind]),
      [["ggml-tiny.en", "whisper"]],
    );
    const error = await rejectsWith(pull("hf:ggerganov/whisper.cpp/ggml-fake.bin"), "not_gguf");
    assert.match(error.message, /not a whisper\.cpp ggml model/);
    assert.deepEqual(await allFiles(dir), ["ggml-tiny.en.bin"]);
  });

  test("hf:<owner>/<repo>:<quant> picks the file of that quantization from the repo's file list", async () => {
    const f16 = await pull("hf:ggml-org/tiny:F16");
    assert.deepEqual(
      f16.files.map((f) => [f.name, f.sha256, f.verified]),
      [["llama-2-tiny-random-F16.gguf", sha256(tiny), true]],
    );
    const f32 = await pull("hf:ggml-org/tiny:f32"); // case does not matter; sub-folders are searched
    assert.deepEqual(
      f32.files.map((f) => f.name),
      ["stories260K-F32.gguf"],
    );
    assert.ok(hf.requests.some((r) => r.url === "/api/models/ggml-org/tiny/tree/main?recursive=true"));
    const none = await rejectsWith(pull("hf:ggml-org/tiny:Q4_K_M"), "not_found");
    assert.match(none.message, /no \.gguf file for quantization Q4_K_M/);
    assert.match(none.hint ?? "", /llama-2-tiny-random-F16\.gguf/);
  });

  test("a split GGUF comes down whole: every part, each verified, nothing left half-written", async () => {
    const result = await pull("hf:ggml-org/tiny:Q8_0");
    assert.deepEqual(
      result.files.map((f) => [f.name, f.verified]),
      [
        ["big-Q8_0-00001-of-00002.gguf", true],
        ["big-Q8_0-00002-of-00002.gguf", true],
      ],
    );
    const byName = await pull("hf:ggml-org/tiny/split/big-Q8_0-00002-of-00002.gguf", { modelsDir: join(dir, "b") });
    assert.equal(byName.files.length, 2, "naming any part pulls all of them");
    assert.deepEqual(await allFiles(dir), ["b", "big-Q8_0-00001-of-00002.gguf", "big-Q8_0-00002-of-00002.gguf"]);
  });

  test("a connection dropped mid-transfer is resumed with a Range request, and the result verifies", async () => {
    const progress = silentProgress();
    const result = await pull("hf:ggml-org/flaky/stories260K.gguf", { progress });
    assert.equal(result.files[0]?.sha256, STORIES_SHA);
    const gets = hf.requests.filter((r) => r.server === "cdn" && r.method === "GET");
    assert.equal(gets.length, 2);
    assert.equal(gets[0]?.range, undefined);
    assert.match(gets[1]?.range ?? "", /^bytes=\d+-$/);
    assert.ok(Number(/\d+/.exec(gets[1]!.range!)![0]) > 0, "the second request starts past 0");
    assert.equal(progress.notes.length, 1);
    assert.match(progress.notes[0]!, /resuming/);
    assert.deepEqual(await allFiles(dir), ["stories260K.gguf"]);
  });

  test("an interrupted pull keeps a hidden .part the catalog ignores, and the next pull resumes from it", async () => {
    const error = await rejectsWith(pull("hf:ggml-org/dead/stories260K.gguf", { retries: 1 }), "interrupted");
    assert.match(error.hint ?? "", /run the same `corral models pull` again/);
    assert.deepEqual(await allFiles(dir), [".stories260K.gguf.part"]);
    const kept = (await stat(join(dir, ".stories260K.gguf.part"))).size;
    assert.ok(kept > 0 && kept < stories.length, `partial size ${kept}`);
    assert.deepEqual(await scanModels({ modelsDir: dir, logger: pino({ level: "silent" }) }), []);

    // The same file, now from a server that does not drop: only the rest is fetched.
    hf.repos.get("ggml-org/dead")!.files["stories260K.gguf"]!.dropTimes = 0;
    hf.requests.length = 0;
    const progress = silentProgress();
    const result = await pull("hf:ggml-org/dead/stories260K.gguf", { progress });
    assert.deepEqual(progress.starts, [{ name: "stories260K.gguf", from: kept }]);
    assert.equal(hf.requests.find((r) => r.server === "cdn" && r.method === "GET")?.range, `bytes=${kept}-`);
    assert.equal(result.files[0]?.sha256, STORIES_SHA);
    assert.deepEqual(await allFiles(dir), ["stories260K.gguf"]);
  });

  test("two pulls of one file never share its .part: a live pull's lock refuses, a dead one's is taken over", async () => {
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, ".stories260K.gguf.lock"), String(process.pid)); // this test process: alive
    const busy = await rejectsWith(pull("hf:ggml-org/tiny/stories260K.gguf"), "exists");
    assert.match(
      busy.message,
      new RegExp(`another corral models pull \\(pid ${process.pid}\\) is downloading stories260K\\.gguf`),
    );
    const child = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], {
      encoding: "utf8",
    });
    await writeFile(join(dir, ".stories260K.gguf.lock"), child.stdout); // a process that has exited
    const result = await pull("hf:ggml-org/tiny/stories260K.gguf");
    assert.equal(result.files[0]?.sha256, STORIES_SHA);
    assert.deepEqual(await allFiles(dir), ["stories260K.gguf"], "the lock is gone after the pull");
  });

  test("a checksum mismatch removes the download and says so", async () => {
    const error = await rejectsWith(pull("hf:ggml-org/corrupt/stories260K.gguf"), "checksum");
    assert.match(error.message, new RegExp(`sha256 ${STORIES_SHA} does not match the expected 0{64}`));
    assert.deepEqual(await allFiles(dir), []);
    // --sha256 is checked against the server's and refused when they differ.
    await rejectsWith(pull("hf:ggml-org/tiny/stories260K.gguf", { sha256: "1".repeat(64) }), "checksum");
  });

  test("too little disk space is caught before any byte is fetched", async () => {
    const error = await rejectsWith(pull("hf:ggml-org/huge/big.gguf"), "disk_full");
    assert.match(error.message, /needs .* more and .* has .* free/);
    assert.match(error.hint ?? "", /CORRAL_MODELS_DIR/);
    assert.equal(hf.requests.filter((r) => r.method === "GET").length, 0);
    assert.deepEqual(await allFiles(dir), []);
  });

  test("a disk that fills up mid-transfer (ENOSPC from the kernel) removes the partial file", async () => {
    // The .part is a link to /dev/full, where every write fails with ENOSPC.
    await mkdir(dir, { recursive: true });
    await symlink("/dev/full", join(dir, ".stories260K.gguf.part"));
    const error = await rejectsWith(pull("hf:ggml-org/tiny/stories260K.gguf"), "disk_full");
    assert.match(error.message, /the disk filled up/);
    assert.match(error.hint ?? "", /free some space/);
    assert.deepEqual(await allFiles(dir), []);
  });

  test("404, an unknown repo, and a file that is not GGUF each fail clearly and leave nothing", async () => {
    const missing = await rejectsWith(pull("hf:ggml-org/tiny/nope.gguf"), "not_found");
    assert.match(missing.hint ?? "", /has no such file/);
    const unknown = await rejectsWith(pull("hf:nobody/nothing/x.gguf"), "not_found");
    assert.match(unknown.message, /no such repository, or it is private/);
    const html = await rejectsWith(pull("hf:ggml-org/html/model.gguf"), "not_gguf");
    assert.match(html.message, /not a GGUF file/);
    assert.deepEqual(await allFiles(dir), []);
  });

  test("a gated repo: 401 without HF_TOKEN, success with it, and the token never leaves the hub's origin", async () => {
    const denied = await rejectsWith(pull("hf:meta/gated/stories260K.gguf"), "unauthorized");
    assert.match(denied.hint ?? "", /set HF_TOKEN/);
    const wrong = await rejectsWith(pull("hf:meta/gated/stories260K.gguf", { token: "hf_wrong" }), "unauthorized");
    assert.match(wrong.hint ?? "", /HF_TOKEN was refused/);
    hf.requests.length = 0;
    const result = await pull("hf:meta/gated/stories260K.gguf", { token: TOKEN });
    assert.equal(result.files[0]?.verified, true);
    assert.ok(hf.requests.some((r) => r.server === "hub" && r.authorization === `Bearer ${TOKEN}`));
    assert.ok(hf.requests.some((r) => r.server === "cdn"));
    assert.ok(
      hf.requests.every((r) => r.server === "hub" || r.authorization === undefined),
      "no token to the CDN",
    );
  });

  test("the corral command: plain progress lines without a TTY, clear errors with their fix, exit codes, no token printed", async () => {
    const env = (extra: Record<string, string> = {}) =>
      corralEnv({ CORRAL_HF_ENDPOINT: hf.endpoint, CORRAL_MODELS_DIR: dir, ...extra });
    const ok = await runCorral(["models", "pull", "hf:meta/gated/stories260K.gguf"], env({ HF_TOKEN: TOKEN }));
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stderr, /^stories260K\.gguf: downloading 1\.1 MiB$/m);
    assert.match(ok.stderr, /^stories260K\.gguf: done \(1\.1 MiB\)$/m);
    assert.match(ok.stdout, new RegExp(`stories260K\\.gguf  1\\.1 MiB  sha256 ${STORIES_SHA} \\(verified\\)`));
    assert.ok(!`${ok.stdout}${ok.stderr}`.includes(TOKEN));

    const gated = await runCorral(["models", "pull", "hf:meta/gated/stories260K.gguf", "--force"], env());
    assert.equal(gated.code, 1);
    assert.match(gated.stderr, /^error: meta\/gated: stories260K\.gguf: Hugging Face wants a token \(HTTP 401/m);
    assert.match(gated.stderr, /^hint: set HF_TOKEN to a read token/m);
    assert.doesNotMatch(gated.stderr, STACK_LINE);

    const refused = await runCorral(
      ["models", "pull", "hf:meta/gated/stories260K.gguf", "--force"],
      env({ HF_TOKEN: "hf_badtoken_secret" }),
    );
    assert.equal(refused.code, 1);
    assert.ok(!`${refused.stdout}${refused.stderr}`.includes("hf_badtoken_secret"));

    const bad = await runCorral(["models", "pull", "ggml-org/tiny"], env());
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /^error: "ggml-org\/tiny" is not a model reference$/m);

    const json = await runCorral(["models", "pull", "hf:ggml-org/tiny:F16", "--json"], env());
    assert.equal(json.code, 0, json.stderr);
    const parsed = JSON.parse(json.stdout) as { files: { name: string; sha256: string }[] };
    assert.deepEqual(
      parsed.files.map((f) => [f.name, f.sha256]),
      [["llama-2-tiny-random-F16.gguf", sha256(tiny)]],
    );
  });
});

describe("corral models list | inspect | rm", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "corral-models-"));
    for (const name of ["stories260K.gguf", "llama-2-tiny-random.gguf"]) {
      await writeFile(join(dir, name), await readFile(join(sharedModelsDir(), name)));
    }
    await writeFile(
      join(dir, "broken.gguf"),
      (await readFile(join(sharedModelsDir(), "stories260K.gguf"))).subarray(0, 50_000),
    );
    await writeFile(
      join(dir, "models.yaml"),
      "models:\n  - file: stories260K.gguf\n    id: stories\n    aliases: [tiny-stories]\n",
    );
  });
  after(() => rm(dir, { recursive: true, force: true }));
  const env = () => corralEnv({ CORRAL_MODELS_DIR: dir });

  test("list reads each GGUF header and says which files the catalog serves, and under which id", async () => {
    const { code, stdout, stderr } = await runCorral(["models", "list", "--json"], env());
    assert.equal(code, 0, stderr);
    const models = JSON.parse(stdout) as {
      file: string;
      size_bytes: number;
      architecture: string;
      quantization: string | null;
      catalog_ids: string[];
      problem: string | null;
    }[];
    assert.deepEqual(
      models.map((m) => [m.file, m.size_bytes, m.architecture, m.quantization, m.catalog_ids]),
      [
        ["broken.gguf", 50_000, "llama", null, []], // the header is whole, the weights are cut
        ["llama-2-tiny-random.gguf", 1_750_560, "llama", "F16", ["llama-2-tiny-random"]],
        ["stories260K.gguf", 1_185_376, "llama", null, ["stories"]],
      ],
    );
    assert.match(models[0]!.problem ?? "", /truncated/);
    const table = await runCorral(["models", "list"], env());
    assert.match(
      table.stdout,
      /^llama-2-tiny-random\.gguf\s+1\.7 MiB\s+llama\s+F16\s+513048\s+yes: llama-2-tiny-random$/m,
    );
    assert.match(table.stdout, /^broken\.gguf\s+48\.8 KiB\s+llama\s+-\s+-\s+no: file is truncated/m);
  });

  test("inspect finds a model by catalog id and prints its header and estimates that grow with the context", async () => {
    const { code, stdout, stderr } = await runCorral(
      ["models", "inspect", "tiny-stories", "--json", "--sequences", "2"],
      env(),
    );
    assert.equal(code, 0, stderr);
    const m = JSON.parse(stdout) as {
      file: string;
      parameters: number;
      layers: number;
      train_context_size: number;
      metadata: Record<string, unknown>;
      estimates: { context_size: number; sequences: number; vram_bytes: number }[];
    };
    assert.equal(m.file, "stories260K.gguf");
    assert.equal(m.parameters, 292_800);
    assert.equal(m.layers, 6);
    assert.equal(m.train_context_size, 2048);
    assert.equal(m.metadata["llama.attention.head_count_kv"], 4);
    assert.equal(m.metadata["tokenizer.ggml.tokens"], "[512 items]");
    assert.deepEqual(
      m.estimates.map((e) => [e.context_size, e.sequences]),
      [
        [512, 2],
        [2048, 2],
      ],
    );
    assert.ok(m.estimates[1]!.vram_bytes > m.estimates[0]!.vram_bytes);
    const text = await runCorral(["models", "inspect", "llama-2-tiny-random.gguf", "--context-size", "1024"], env());
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^quantization\s+F16$/m);
    assert.match(text.stdout, /^1024\s+1\s+\S+ [KM]iB\s+\S+ [KM]iB$/m);
    const broken = await runCorral(["models", "inspect", "broken"], env());
    assert.equal(broken.code, 1);
    assert.match(broken.stderr, /^error: .*broken\.gguf is not a usable GGUF model: file is truncated/m);
    const none = await runCorral(["models", "inspect", "nothing-here"], env());
    assert.equal(none.code, 1);
    assert.match(none.stderr, /^error: no model "nothing-here" in /m);
  });

  test("rm asks for --yes without a terminal, then deletes the model and its partial download", async () => {
    await writeFile(join(dir, ".llama-2-tiny-random.gguf.part"), "partial");
    const refused = await runCorral(["models", "rm", "llama-2-tiny-random"], env());
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /pass --yes/);
    assert.ok(await stat(join(dir, "llama-2-tiny-random.gguf")));
    const removed = await runCorral(["models", "rm", "llama-2-tiny-random", "--yes"], env());
    assert.equal(removed.code, 0, removed.stderr);
    assert.doesNotMatch(removed.stderr, /models\.yaml still lists/);
    const listed = await runCorral(["models", "rm", "tiny-stories", "--yes"], corralEnv({ CORRAL_MODELS_DIR: dir }));
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stderr, /^note: models\.yaml still lists stories260K\.gguf/m);
    await writeFile(join(dir, "stories260K.gguf"), await readFile(join(sharedModelsDir(), "stories260K.gguf")));
    assert.deepEqual(await allFiles(dir), ["broken.gguf", "models.yaml", "stories260K.gguf"]);
    const outside = await runCorral(["models", "rm", "/etc/passwd", "--yes"], env());
    assert.equal(outside.code, 1);
  });
});

describe("corral models pull from a plain https:// URL", () => {
  let server: Server;
  let base: string;
  let root: string;
  before(async () => {
    const stories = await readFile(join(sharedModelsDir(), "stories260K.gguf"));
    root = await mkdtemp(join(tmpdir(), "corral-pull-url-"));
    // A plain file server that refuses HEAD (405) and gives no hash, as many do.
    server = createServer((req, res) => {
      if (req.method === "HEAD") {
        res.writeHead(405);
        return res.end();
      }
      if (req.url !== "/files/stories260K.gguf") {
        res.writeHead(404);
        return res.end("not found");
      }
      res.writeHead(200, { "content-length": stories.length });
      res.end(stories);
    });
    await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((done) => server.close(done));
    await rm(root, { recursive: true, force: true });
  });

  test("without HEAD the size comes from the GET; --sha256 verifies it, and a wrong one removes the file", async () => {
    const lines: string[] = [];
    const ok = await pullModel(`${base}/files/stories260K.gguf`, {
      modelsDir: join(root, "a"),
      progress: lineProgress((line) => lines.push(line)),
      sha256: STORIES_SHA,
    });
    assert.deepEqual(
      ok.files.map((f) => [f.name, f.size, f.verified]),
      [["stories260K.gguf", 1_185_376, true]],
    );
    assert.equal(lines[0], "stories260K.gguf: downloading");
    assert.equal(lines.at(-1), "stories260K.gguf: done (1.1 MiB)");
    const unverified = await pullModel(`${base}/files/stories260K.gguf`, {
      modelsDir: join(root, "b"),
      progress: lineProgress(() => undefined),
    });
    assert.equal(unverified.files[0]?.verified, false);
    const wrong = await pullModel(`${base}/files/stories260K.gguf`, {
      modelsDir: join(root, "c"),
      progress: lineProgress(() => undefined),
      sha256: "f".repeat(64),
    }).catch((e: unknown) => e);
    assert.ok(wrong instanceof PullError && wrong.code === "checksum", String(wrong));
    assert.deepEqual(await allFiles(join(root, "c")), []);
    const missing = await pullModel(`${base}/files/other.gguf`, {
      modelsDir: join(root, "d"),
      progress: lineProgress(() => undefined),
    }).catch((e: unknown) => e);
    assert.ok(missing instanceof PullError && missing.code === "not_found", String(missing));
  });
});
