import { createReadStream } from "node:fs";

/** One line of a file, as {@link readLines} yields it. */
export interface FileLine {
  /** The line's text, without its line ending (`\n` or `\r\n`). */
  text: string;
  /** 1-based line number in the file. */
  number: number;
  /** Byte offset just past the line (and its newline): where the next line starts. */
  end: number;
}

export interface ReadLinesOptions {
  /** Byte offset to start at; must be the start of a line. @defaultValue 0 */
  start?: number;
  /** Number of the line at `start`. @defaultValue 1 */
  firstLine?: number;
  /** Read size. @defaultValue 64 KiB */
  highWaterMark?: number;
  signal?: AbortSignal;
}

const NEWLINE = 0x0a;
const CR = 0x0d;

/**
 * Reads a file line by line as a stream, with each line's number and end offset, so a
 * reader can save where it is and resume there (`start`, `firstLine`). Memory holds one
 * read buffer plus the longest line. Blank lines are yielded too. An aborted `signal`
 * stops it before the next line (an AbortError).
 */
export async function* readLines(path: string, options: ReadLinesOptions = {}): AsyncGenerator<FileLine> {
  let offset = options.start ?? 0;
  let number = options.firstLine ?? 1;
  const stream = createReadStream(path, {
    start: offset,
    highWaterMark: options.highWaterMark ?? 64 * 1024,
    ...(options.signal ? { signal: options.signal } : {}),
  });
  let rest: Buffer | null = null;
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      const buffer: Buffer = rest ? Buffer.concat([rest, chunk]) : chunk;
      let from = 0;
      for (;;) {
        if (options.signal?.aborted) throw new DOMException("The operation was aborted", "AbortError");
        const at = buffer.indexOf(NEWLINE, from);
        if (at < 0) break;
        const stop = at > from && buffer[at - 1] === CR ? at - 1 : at;
        offset += at + 1 - from;
        yield { text: buffer.toString("utf8", from, stop), number: number++, end: offset };
        from = at + 1;
      }
      rest = from < buffer.length ? buffer.subarray(from) : null;
    }
    if (rest && rest.length > 0) {
      offset += rest.length;
      const stop = rest[rest.length - 1] === CR ? rest.length - 1 : rest.length;
      yield { text: rest.toString("utf8", 0, stop), number, end: offset };
    }
  } finally {
    stream.destroy();
  }
}
