import { randomBytes } from "node:crypto";
import { InvalidRequestError } from "@corral/shared";

/** What a file id may look like: `file-` and 1–64 letters, digits, '_' or '-'. */
export const FILE_ID_PATTERN = /^file-[A-Za-z0-9_-]{1,64}$/;

/** A new file id: `file-` and 24 hex characters (96 bits). */
export const newFileId = (): string => `file-${randomBytes(12).toString("hex")}`;

/** Throws a 400 naming `param` unless `id` looks like a file id. */
export function assertFileId(id: unknown, param = "file_id"): asserts id is string {
  if (typeof id !== "string" || !FILE_ID_PATTERN.test(id)) {
    throw new InvalidRequestError(
      `Invalid file id: expected \`file-\` and letters or digits.`,
      param,
      "invalid_file_id",
    );
  }
}
