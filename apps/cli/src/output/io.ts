/** Where a command writes. `main` passes the process streams; tests may pass buffers. */
export interface CliIo {
  /** One line of results (stdout). */
  out(line: string): void;
  /** One line of progress, warnings and errors (stderr). */
  err(line: string): void;
  /** Whether stdout is a terminal (progress bars, colours). */
  readonly isTty: boolean;
}

export const processIo = (): CliIo => ({
  out: (line) => void process.stdout.write(`${line}\n`),
  err: (line) => void process.stderr.write(`${line}\n`),
  isTty: Boolean(process.stdout.isTTY),
});
