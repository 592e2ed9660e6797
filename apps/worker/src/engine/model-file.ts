import { open, stat } from "node:fs/promises";
import { isAbsolute, relative, resolve, sep } from "node:path";
import { ModelFileError } from "./errors.js";

/**
 * `file` resolved against `modelsDir`, when that stays inside the folder. The catalog
 * comes from Redis, so a tampered one could name any file the worker can read
 * (`../../etc/…`, an absolute path elsewhere): a path that leaves the folder throws
 * {@link ModelFileError} (the job fails, not retried).
 *
 * The check is lexical, on the resolved path, and symlinks are followed as they are: a
 * link inside the folder may point anywhere. Whoever can put a link in the models folder
 * can put a model there too, so resolving links would guard against no one the catalog
 * check does not already stop, and it would break the usual layout of links into a shared
 * model store (and the tests' links to ../shared/models).
 */
export function modelFilePath(modelsDir: string, file: string): string {
  if (file === "" || file.includes("\0")) throw new ModelFileError(file, "is not a file name");
  const folder = resolve(modelsDir);
  const path = resolve(folder, file);
  const inside = relative(folder, path);
  if (inside === "" || inside === ".." || inside.startsWith(`..${sep}`) || isAbsolute(inside)) {
    throw new ModelFileError(file, `is outside the models folder ${folder}`);
  }
  return path;
}

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
