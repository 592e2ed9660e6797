import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { API_KEY, startStack, type OpenAIStack } from "../openai/harness.js";
import { JFK_SECONDS, WHISPER_TEST_MODEL, jfkMp3, jfkWav } from "../openai/audio-fixtures.js";
import { STACK_LINE, corralEnv, runCorral } from "./run-corral.js";

// The real `corral` bin against a real scheduler and worker (whisper.cpp's test model, which
// writes no words: the files and their formats are checked, not the text).
describe("corral transcribe", () => {
  let stack: OpenAIStack;
  let dir: string;

  before(async () => {
    stack = await startStack({ whisper: true });
    dir = await mkdtemp(join(tmpdir(), "corral-transcribe-"));
    await writeFile(join(dir, "speech.wav"), jfkWav());
    await writeFile(join(dir, "speech-copy.mp3"), jfkMp3());
    await writeFile(join(dir, "notes.wav"), "not audio at all\n".repeat(50));
  });
  after(async () => {
    await stack?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const env = () => corralEnv({ CORRAL_URL: stack.url, CORRAL_API_KEY: API_KEY });

  test("writes an .srt per file into -o DIR with progress; a bad file is reported, the rest go on, exit 1", async () => {
    const out = join(dir, "subtitles");
    const result = await runCorral(
      [
        "transcribe",
        join(dir, "speech.wav"),
        join(dir, "notes.wav"),
        join(dir, "speech-copy.mp3"),
        "-m",
        WHISPER_TEST_MODEL,
        "-f",
        "srt",
        "-o",
        out,
        "--language",
        "en",
        "--concurrency",
        "1",
      ],
      env(),
    );
    assert.equal(result.code, 1, result.stderr);
    assert.doesNotMatch(result.stderr, STACK_LINE);
    const progress = result.stderr.split("\n").filter((line) => line.startsWith("["));
    assert.deepEqual(
      progress.map((line) => line.slice(0, 5)),
      ["[1/3]", "[2/3]", "[3/3]"],
    );
    assert.match(result.stderr, /notes\.wav: failed: .*not usable audio.*\(param: file\)/);
    assert.match(result.stderr, /1 of 3 files failed/);
    assert.deepEqual((await readdir(out)).sort(), ["speech-copy.srt", "speech.srt"]);
    // The test model writes no segments; whatever cues there are have SubRip times.
    for (const name of ["speech.srt", "speech-copy.srt"]) {
      const srt = await readFile(join(out, name), "utf8");
      for (const line of srt.split("\n").filter((l) => l.includes("-->")))
        assert.match(line, /^\d{2}:\d{2}:\d{2},\d{3} --> \d{2}:\d{2}:\d{2},\d{3}$/);
    }
  });

  test("-f json beside the input, with the first Whisper model when -m is not given; exit 0", async () => {
    const result = await runCorral(["transcribe", join(dir, "speech.wav"), "-f", "json"], env());
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, /\[1\/1\] .*speech\.wav → .*speech\.json/);
    assert.match(result.stderr, /1 file transcribed/);
    const json = JSON.parse(await readFile(join(dir, "speech.json"), "utf8")) as {
      duration: number;
      segments: unknown[];
      text: string;
    };
    assert.equal(json.duration, JFK_SECONDS);
    assert.ok(Array.isArray(json.segments));
    assert.equal(typeof json.text, "string");
  });

  test("an unknown model fails each file with the scheduler's message naming model", async () => {
    const result = await runCorral(["transcribe", join(dir, "speech.wav"), "-m", "whisper-9"], env());
    assert.equal(result.code, 1);
    assert.match(result.stderr, /speech\.wav: failed: .*whisper-9.*\(param: model\)/);
  });
});
