import { createReadStream } from "node:fs";

/** One line of a file, as {@link readLines} yields it. */
export interface FileLine {
  /** The line's text, without its line ending (`\n` or `\r\n`); empty when {@link tooLong}. */
  text: string;
  /** 1-based line number in the file. */
  number: number;
  /** Byte offset just past the line (and its newline): where the next line starts. */
  end: number;
  /** The line's length in bytes, without its line ending. */
  bytes: number;
  /** Longer than `maxLineBytes`: its text was skipped while streaming, never held. */
  tooLong: boolean;
}

export interface ReadLinesOptions {
  /** Byte offset to start at; must be the start of a line. @defaultValue 0 */
  start?: number;
  /** Number of the line at `start`. @defaultValue 1 */
  firstLine?: number;
  /** Read size. @defaultValue 64 KiB */
  highWaterMark?: number;
  /**
   * Longest line (bytes, without its line ending) whose text is yielded; a longer line is
   * yielded with `tooLong` and no text, and at most this many of its bytes are ever held.
   * @defaultValue Infinity
   */
  maxLineBytes?: number;
  /** Filled in while reading: the most bytes of one line held across reads. */
  stats?: ReadLinesStats;
  signal?: AbortSignal;
}

export interface ReadLinesStats {
  maxHeldBytes: number;
}

const NEWLINE = 0x0a;
const CR = 0x0d;

/**
 * Reads a file line by line as a stream, with each line's number and end offset, so a
 * reader can save where it is and resume there (`start`, `firstLine`). The pieces of a
 * line that spans reads are kept in a list and joined once, at its end, so reading is
 * linear in the line's length; memory holds one read buffer plus the longest line up to
 * `maxLineBytes`. Blank lines are yielded too. An aborted `signal` stops it before the next
 * line (an AbortError).
 */
export async function* readLines(path: string, options: ReadLinesOptions = {}): AsyncGenerator<FileLine> {
  let offset = options.start ?? 0;
  let number = options.firstLine ?? 1;
  const maxLineBytes = options.maxLineBytes ?? Number.POSITIVE_INFINITY;
  const stream = createReadStream(path, {
    start: offset,
    highWaterMark: options.highWaterMark ?? 64 * 1024,
    ...(options.signal ? { signal: options.signal } : {}),
  });
  // The current line's pieces from earlier reads (dropped once it is too long).
  let parts: Buffer[] = [];
  let held = 0;
  let lineBytes = 0;
  let lastByte = -1;
  let dropped = false;

  const keep = (piece: Buffer) => {
    if (piece.length === 0) return;
    lineBytes += piece.length;
    lastByte = piece[piece.length - 1]!;
    if (dropped) return;
    // One byte of slack: a trailing CR is not part of the line.
    if (lineBytes > maxLineBytes + 1) {
      dropped = true;
      parts = [];
      held = 0;
      return;
    }
    parts.push(piece);
    held += piece.length;
    if (options.stats && held > options.stats.maxHeldBytes) options.stats.maxHeldBytes = held;
  };

  /** Ends the current line with `tail` (its bytes in this read, before the newline). */
  const finish = (tail: Buffer, newline: boolean): FileLine => {
    const total = lineBytes + tail.length;
    const last = tail.length > 0 ? tail[tail.length - 1]! : lastByte;
    const bytes = total > 0 && last === CR ? total - 1 : total;
    offset += total + (newline ? 1 : 0);
    let line: FileLine;
    if (dropped || bytes > maxLineBytes) {
      line = { text: "", number: number++, end: offset, bytes, tooLong: true };
    } else {
      const whole = parts.length === 0 ? tail : Buffer.concat([...parts, tail], total);
      line = { text: whole.toString("utf8", 0, bytes), number: number++, end: offset, bytes, tooLong: false };
    }
    parts = [];
    held = 0;
    lineBytes = 0;
    lastByte = -1;
    dropped = false;
    return line;
  };

  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      let from = 0;
      for (;;) {
        if (options.signal?.aborted) throw new DOMException("The operation was aborted", "AbortError");
        const at = chunk.indexOf(NEWLINE, from);
        if (at < 0) break;
        // subarray copies nothing; finish() joins the pieces only for a line within the limit.
        yield finish(chunk.subarray(from, at), true);
        from = at + 1;
      }
      keep(chunk.subarray(from));
    }
    if (lineBytes > 0) yield finish(EMPTY, false);
  } finally {
    stream.destroy();
  }
}

const EMPTY = Buffer.alloc(0);
