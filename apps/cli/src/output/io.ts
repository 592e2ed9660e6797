import { createInterface } from "node:readline/promises";

/** Where a command writes. `main` passes the process streams; tests may pass buffers. */
export interface CliIo {
  /** One line of results (stdout). */
  out(line: string): void;
  /** One line of progress, warnings and errors (stderr). */
  err(line: string): void;
  /** Whether stdout is a terminal (progress bars, colours). */
  readonly isTty: boolean;
  /** Whether stderr is a terminal (progress bars drawn there). @defaultValue isTty */
  readonly isErrTty?: boolean;
  /** Asks a question on the terminal and returns the answer; absent when stdin is not a terminal. */
  ask?(question: string): Promise<string>;
}

export const processIo = (): CliIo => ({
  out: (line) => void process.stdout.write(`${line}\n`),
  err: (line) => void process.stderr.write(`${line}\n`),
  isTty: Boolean(process.stdout.isTTY),
  isErrTty: Boolean(process.stderr.isTTY),
  ...(process.stdin.isTTY
    ? {
        ask: async (question: string) => {
          const rl = createInterface({ input: process.stdin, output: process.stderr });
          try {
            return await rl.question(question);
          } finally {
            rl.close();
          }
        },
      }
    : {}),
});
