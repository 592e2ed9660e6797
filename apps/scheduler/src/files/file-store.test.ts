import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { FileLimitError, FileStore } from "./file-store.js";

async function withStore(run: (store: FileStore, dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "corral-store-"));
  try {
    await run(await FileStore.create({ dir: join(dir, "files") }), join(dir, "files"));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function* chunks(n: number, text: string) {
  for (let i = 0; i < n; i++) yield Buffer.from(text);
}

test("a write streams the content into place and counts bytes and lines", async () => {
  await withStore(async (store, dir) => {
    assert.deepEqual(await store.write("file-a", Readable.from(chunks(3, "ab\ncd"))), { bytes: 15, lines: 4 });
    assert.equal(await readFile(join(dir, "file-a"), "utf8"), "ab\ncdab\ncdab\ncd");
    assert.deepEqual(await store.write("file-b", Readable.from(chunks(2, "x\n"))), { bytes: 4, lines: 2 });
    assert.deepEqual(await store.write("file-c", Readable.from([])), { bytes: 0, lines: 0 });
    assert.equal(await store.size("file-a"), 15);
    assert.equal(await store.size("file-none"), null);
  });
});

test("passing a limit stops the write with FileLimitError and leaves nothing behind", async () => {
  await withStore(async (store, dir) => {
    await assert.rejects(
      store.write("file-big", Readable.from(chunks(100, "0123456789")), { maxBytes: 95 }),
      (error: unknown) => error instanceof FileLimitError && error.kind === "bytes" && error.limit === 95,
    );
    await assert.rejects(
      store.write("file-long", Readable.from(chunks(10, "a\n")), { maxLines: 9 }),
      (error: unknown) => error instanceof FileLimitError && error.kind === "lines",
    );
    assert.deepEqual(await readdir(dir), []);
  });
});

test("a link outlives the removal of the original; unsafe ids are refused", async () => {
  await withStore(async (store) => {
    await store.write("file-src", Readable.from(["hello\n"]));
    await store.link("file-src", "batch_x.input.jsonl");
    await store.remove("file-src");
    await store.remove("file-src"); // a missing file is fine
    assert.equal(await store.size("batch_x.input.jsonl"), 6);
    assert.throws(() => store.path("../etc/passwd"));
    assert.throws(() => store.path(".hidden"));
  });
});
