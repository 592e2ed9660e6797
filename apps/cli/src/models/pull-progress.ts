import cliProgress from "cli-progress";
import type { PullProgress } from "./download-file.js";
import { formatBytes } from "../output/table.js";

/**
 * Progress for a terminal: one bar per file on stderr (cli-progress), redrawn at most
 * every 100 ms; notes are printed above it.
 */
export function barProgress(stream: NodeJS.WriteStream = process.stderr): PullProgress {
  let bar: cliProgress.SingleBar | undefined;
  return {
    start(name, total, from) {
      bar = new cliProgress.SingleBar(
        {
          stream,
          format: `${name} [{bar}] {percentage}% {got} / {size}`,
          hideCursor: true,
          clearOnComplete: false,
          fps: 10,
        },
        cliProgress.Presets.shades_classic,
      );
      bar.start(total ?? 0, from, { got: formatBytes(from), size: total === null ? "?" : formatBytes(total) });
    },
    resize(total) {
      bar?.setTotal(total);
      bar?.update({ size: formatBytes(total) });
    },
    advance(done) {
      bar?.update(done, { got: formatBytes(done) });
    },
    finish() {
      bar?.stop();
      bar = undefined;
    },
    note(message) {
      if (bar) stream.write("\n");
      stream.write(`${message}\n`);
    },
  };
}

/**
 * Progress without a terminal (CI logs, pipes): a line when a file starts, at each
 * further 10 %, at most every `everyMs` otherwise, and when it ends.
 */
export function lineProgress(write: (line: string) => void, everyMs = 5000, now = Date.now): PullProgress {
  let name = "";
  let total: number | null = null;
  let lastTenth = -1;
  let lastAt = 0;
  let latest = 0;
  const line = (done: number) =>
    total === null || total === 0
      ? `${name}: ${formatBytes(done)}`
      : `${name}: ${Math.floor((done / total) * 100)}% (${formatBytes(done)} of ${formatBytes(total)})`;
  return {
    start(fileName, size, from) {
      name = fileName;
      total = size;
      latest = from;
      lastTenth = total ? Math.floor((from / total) * 10) : -1;
      lastAt = now();
      write(
        from > 0
          ? `${name}: resuming at ${formatBytes(from)}${total === null ? "" : ` of ${formatBytes(total)}`}`
          : `${name}: downloading${total === null ? "" : ` ${formatBytes(total)}`}`,
      );
    },
    resize(size) {
      total = size;
    },
    advance(done) {
      latest = done;
      const tenth = total ? Math.floor((done / total) * 10) : -1;
      if ((total && tenth > lastTenth && tenth < 10) || now() - lastAt >= everyMs) {
        lastTenth = tenth;
        lastAt = now();
        write(line(done));
      }
    },
    finish() {
      write(`${name}: done (${formatBytes(latest)})`);
    },
    note(message) {
      write(message);
    },
  };
}
