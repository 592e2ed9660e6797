import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { InsufficientMemoryError } from "node-llama-cpp";
import {
  InvalidJobError,
  ModelFileError,
  OutOfMemoryError,
  PromptTooLongError,
  isOutOfMemory,
  isUnrecoverable,
} from "./errors.js";
import { checkModelFile } from "./model-file.js";
import { JobFailureError, UnsupportedSchemaError } from "@corral/shared";

describe("engine errors", () => {
  test("carry their name, code and context", () => {
    const tooLong = new PromptTooLongError(300, 256, 16);
    assert.equal(tooLong.name, "PromptTooLongError");
    assert.equal(tooLong.code, "context_length_exceeded");
    assert.ok(tooLong instanceof JobFailureError);
    assert.ok(!("status" in tooLong) && !("type" in tooLong) && !("param" in tooLong), "no HTTP on a worker error");
    assert.deepEqual([tooLong.promptTokens, tooLong.contextSize, tooLong.maxTokens], [300, 256, 16]);
    assert.match(tooLong.message, /300 tokens.*256 tokens/);

    const file = new ModelFileError("/m/x.gguf", "does not exist");
    assert.equal(file.name, "ModelFileError");
    assert.equal(file.message, "Model file /m/x.gguf: does not exist");

    const oom = new OutOfMemoryError("m", "context", "cudaMalloc failed");
    assert.equal(oom.code, "out_of_memory");
    assert.equal(oom.phase, "context");
  });

  test("isUnrecoverable: bad input and bad files, not out-of-memory or unknown errors", () => {
    assert.ok(isUnrecoverable(new ModelFileError("/x", "bad")));
    assert.ok(isUnrecoverable(new PromptTooLongError(1, 1, 1)));
    assert.ok(isUnrecoverable(new UnsupportedSchemaError("/pattern", "no")));
    assert.ok(isUnrecoverable(new InvalidJobError("j", "no prompt")));
    assert.ok(!isUnrecoverable(new OutOfMemoryError("m", "load", "x")));
    assert.ok(!isUnrecoverable(new Error("Failed to create context")));
  });

  test("isOutOfMemory recognises node-llama-cpp's error and llama.cpp's allocation messages", () => {
    assert.ok(isOutOfMemory(new InsufficientMemoryError("A context size of 4096 is too large for the available VRAM")));
    assert.ok(isOutOfMemory(new Error("ggml_backend_cuda_buffer_type_alloc_buffer: failed to allocate CUDA0 buffer")));
    assert.ok(isOutOfMemory(new Error("CUDA error: out of memory")));
    assert.ok(isOutOfMemory(new Error("cudaMalloc failed")));
    assert.ok(isOutOfMemory(new Error("vk::Device::allocateMemory: ErrorOutOfDeviceMemory")));
    assert.ok(isOutOfMemory(new Error("load failed", { cause: new Error("unable to allocate backend buffer") })));
    assert.ok(isOutOfMemory("llama_init_from_model: failed to allocate buffer for kv cache"));
    assert.ok(!isOutOfMemory(new Error("Failed to load model")));
    assert.ok(!isOutOfMemory(undefined));
  });
});

describe("checkModelFile", () => {
  test("names what is wrong with the file", async () => {
    const dir = await mkdtemp(join(tmpdir(), "corral-model-file-"));
    try {
      await assert.rejects(checkModelFile(dir), /is not a regular file/);
      const tiny = join(dir, "tiny.gguf");
      await writeFile(tiny, "GGUF");
      await assert.rejects(checkModelFile(tiny), /4 bytes, too small/);
      const v9 = join(dir, "v9.gguf");
      const header = Buffer.alloc(24);
      header.write("GGUF", 0, "latin1");
      header.writeUInt32LE(9, 4);
      await writeFile(v9, header);
      await assert.rejects(checkModelFile(v9), /unsupported GGUF version 9/);
      const empty = join(dir, "empty.gguf");
      header.writeUInt32LE(3, 4);
      await writeFile(empty, header);
      await checkModelFile(empty); // a header with no tensors and no metadata is sane
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
