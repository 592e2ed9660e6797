import { createHash } from "node:crypto";
import type { BatchEndpoint, BatchError } from "@corral/shared";
import { readLines } from "../files/read-lines.js";
import { checkLine } from "./batch-lines.js";

export interface ValidateInputOptions {
  /** Most errors reported (the batch fails on the first one anyway). @defaultValue 100 */
  maxErrors?: number;
  /**
   * Longest line read; a longer one is not a structural fault but a per-line one (the
   * error file says so), so it counts and is skipped here. @defaultValue Infinity
   */
  maxLineBytes?: number;
  signal?: AbortSignal;
}

/** What the structural pass found. */
export interface InputCheck {
  /** Request lines (blank lines are skipped). */
  total: number;
  /** Structural faults, by line number; empty when the file is fine. */
  errors: BatchError[];
  /** Faults past `maxErrors` that were counted but not listed. */
  omitted: number;
}

/** A growable array of 64-bit hashes: 8 bytes per line, whatever the custom_ids. */
class HashList {
  #data = new BigUint64Array(1024);
  length = 0;
  push(value: bigint): void {
    if (this.length === this.#data.length) {
      const bigger = new BigUint64Array(this.#data.length * 2);
      bigger.set(this.#data);
      this.#data = bigger;
    }
    this.#data[this.length++] = value;
  }
  /** The values that occur more than once. */
  repeated(): Set<bigint> {
    const sorted = this.#data.subarray(0, this.length).sort();
    const repeated = new Set<bigint>();
    for (let i = 1; i < sorted.length; i++) if (sorted[i] === sorted[i - 1]) repeated.add(sorted[i]!);
    return repeated;
  }
}

const hash64 = (text: string): bigint => createHash("sha1").update(text).digest().readBigUInt64LE(0);

/**
 * The structural pass over a batch input (status `validating`): every non-blank line
 * must be a well-formed request for `endpoint` with a unique `custom_id`. Streams the
 * file; uniqueness is checked on 64-bit hashes of the custom_ids (8 bytes a line), and
 * only lines whose hash repeats are read a second time to compare the ids themselves.
 */
export async function validateInput(
  path: string,
  endpoint: BatchEndpoint,
  options: ValidateInputOptions = {},
): Promise<InputCheck> {
  const maxErrors = options.maxErrors ?? 100;
  const errors: BatchError[] = [];
  let omitted = 0;
  const report = (error: BatchError) => {
    if (errors.length < maxErrors) errors.push(error);
    else omitted++;
  };
  const hashes = new HashList();
  let total = 0;
  const reading = {
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.maxLineBytes !== undefined ? { maxLineBytes: options.maxLineBytes } : {}),
  };
  for await (const line of readLines(path, reading)) {
    if (line.tooLong) {
      total++;
      continue;
    }
    if (line.text.trim() === "") continue;
    total++;
    const checked = checkLine(line.text, line.number, endpoint);
    if (!checked.ok) report(checked.error);
    else hashes.push(hash64(checked.request.custom_id));
  }
  const repeated = hashes.repeated();
  if (repeated.size > 0) {
    const firstSeen = new Map<string, number>();
    for await (const line of readLines(path, reading)) {
      if (line.tooLong || line.text.trim() === "") continue;
      const checked = checkLine(line.text, line.number, endpoint);
      if (!checked.ok || !repeated.has(hash64(checked.request.custom_id))) continue;
      const id = checked.request.custom_id;
      const first = firstSeen.get(id);
      if (first === undefined) firstSeen.set(id, line.number);
      else {
        report({
          code: "duplicate_custom_id",
          message: `Line ${line.number}: \`custom_id\` ${JSON.stringify(id.length > 64 ? `${id.slice(0, 64)}…` : id)} is also used on line ${first}; each request needs its own.`,
          param: "custom_id",
          line: line.number,
        });
      }
    }
    errors.sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
  }
  if (total === 0) {
    report({ code: "empty_file", message: "The input file has no request lines.", param: "input_file_id", line: null });
  }
  return { total, errors, omitted };
}
