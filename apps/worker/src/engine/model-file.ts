import { open, stat } from "node:fs/promises";
import { ModelFileError } from "./errors.js";

const GGUF_MAGIC = "GGUF";
const HEADER_BYTES = 24; // magic u32, version u32, tensor count u64, metadata kv count u64
/** Smallest possible encodings, to bound the counts by the file size. */
const MIN_TENSOR_INFO_BYTES = 8 + 1 + 4 + 8 + 4 + 8; // name length + name + dims + one dim + type + offset
const MIN_KV_BYTES = 8 + 1 + 4 + 1; // key length + key + value type + one-byte value

/**
 * Checks that `path` is a readable file with a sane GGUF header, and throws
 * {@link ModelFileError} saying what is wrong otherwise. node-llama-cpp's own GGUF reader
 * trusts the header's counts, so a file that starts with the magic but holds garbage can
 * make it allocate gigabytes and spin; this cheap check turns that into an error.
 */
export async function checkModelFile(path: string): Promise<void> {
  let size: number;
  try {
    const info = await stat(path);
    if (!info.isFile()) throw new ModelFileError(path, "is not a regular file");
    size = info.size;
  } catch (error) {
    if (error instanceof ModelFileError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT") throw new ModelFileError(path, "does not exist", { cause: error });
    throw new ModelFileError(path, `cannot be read (${code ?? String(error)})`, { cause: error });
  }
  if (size < HEADER_BYTES) throw new ModelFileError(path, `is ${size} bytes, too small to be a GGUF file`);

  const header = Buffer.alloc(HEADER_BYTES);
  try {
    const handle = await open(path, "r");
    try {
      await handle.read(header, 0, HEADER_BYTES, 0);
    } finally {
      await handle.close();
    }
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new ModelFileError(path, `cannot be read (${code ?? String(error)})`, { cause: error });
  }

  const magic = header.toString("latin1", 0, 4);
  if (magic !== GGUF_MAGIC) {
    throw new ModelFileError(path, `is not a GGUF file (starts with ${JSON.stringify(magic)}, expected "GGUF")`);
  }
  const version = header.readUInt32LE(4);
  if (version < 2 || version > 3) throw new ModelFileError(path, `has unsupported GGUF version ${version}`);
  const tensorCount = header.readBigUInt64LE(8);
  const kvCount = header.readBigUInt64LE(16);
  const bytes = BigInt(size);
  if (tensorCount * BigInt(MIN_TENSOR_INFO_BYTES) > bytes || kvCount * BigInt(MIN_KV_BYTES) > bytes) {
    throw new ModelFileError(
      path,
      `has a corrupt GGUF header (${tensorCount} tensors, ${kvCount} metadata entries in ${size} bytes)`,
    );
  }
}
