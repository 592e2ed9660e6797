import { mkdir, readFile, writeFile } from "node:fs/promises";
import { basename, dirname, extname, join, resolve } from "node:path";
import { Command, InvalidArgumentError, Option } from "commander";
import type { SchedulerClient } from "../client/scheduler-client.js";
import type { CliContext } from "../context.js";
import { CliError, EXIT_USAGE } from "../errors.js";
import { withClientOptions } from "./client-options.js";

/** Output formats: the file extension written, and the API's `response_format` that gives it. */
export const TRANSCRIPT_FORMATS = {
  txt: "text",
  srt: "srt",
  vtt: "vtt",
  json: "verbose_json",
} as const;
export type TranscriptFileFormat = keyof typeof TRANSCRIPT_FORMATS;

const intArg = (value: string): number => {
  if (!/^\d+$/.test(value) || Number(value) < 1) throw new InvalidArgumentError("expected a positive integer");
  return Number(value);
};

export interface TranscribeOptions {
  model?: string;
  format: TranscriptFileFormat;
  outputDir?: string;
  language?: string;
  prompt?: string;
  translate?: boolean;
  concurrency: number;
}

/** Where a transcript of `input` goes: beside it, or in `outputDir`, as `<name>.<format>`. */
export function transcriptPath(input: string, format: TranscriptFileFormat, outputDir?: string): string {
  const name = `${basename(input, extname(input))}.${format}`;
  return outputDir === undefined ? join(dirname(resolve(input)), name) : join(resolve(outputDir), name);
}

/** The first Whisper model the scheduler serves (`corral.kind` whisper), for runs without `-m`. */
async function defaultWhisperModel(api: SchedulerClient): Promise<string> {
  const models = await api.listModels();
  const whisper = models.find((m) => m.corral?.kind === "whisper");
  if (!whisper) {
    throw new CliError("the scheduler serves no Whisper model", {
      exitCode: EXIT_USAGE,
      hint: "put a whisper.cpp ggml-*.bin model in the models folder (or its whisper/ subfolder), or name one with -m",
    });
  }
  return whisper.id;
}

/**
 * Transcribes each file through the scheduler (`POST /v1/audio/transcriptions`, or
 * `/translations`), at most `concurrency` at once, writing each transcript as it comes.
 * Progress goes to stderr (`[done/total] file → transcript`); a file that fails is reported
 * and the others go on. Returns how many failed.
 */
export async function transcribeFiles(
  api: SchedulerClient,
  files: readonly string[],
  options: TranscribeOptions,
  log: (line: string) => void,
): Promise<number> {
  const model = options.model ?? (await defaultWhisperModel(api));
  if (options.outputDir !== undefined) await mkdir(options.outputDir, { recursive: true });
  const fields: Record<string, string> = { model, response_format: TRANSCRIPT_FORMATS[options.format] };
  if (options.language !== undefined) fields.language = options.language;
  if (options.prompt !== undefined) fields.prompt = options.prompt;
  let next = 0;
  let done = 0;
  let failed = 0;
  const one = async (file: string): Promise<void> => {
    try {
      const data = await readFile(file).catch((error: NodeJS.ErrnoException) => {
        throw new Error(`cannot read it (${error.code ?? error.message})`);
      });
      const body = await api.transcribe({ data, filename: basename(file) }, fields, {
        translate: options.translate ?? false,
      });
      const out = transcriptPath(file, options.format, options.outputDir);
      await writeFile(out, options.format === "json" ? `${JSON.stringify(JSON.parse(body), null, 2)}\n` : body);
      done++;
      log(`[${done + failed}/${files.length}] ${file} → ${out}`);
    } catch (error) {
      failed++;
      log(`[${done + failed}/${files.length}] ${file}: failed: ${(error as Error).message}`);
    }
  };
  const lanes = Array.from({ length: Math.min(options.concurrency, files.length) }, async () => {
    while (next < files.length) await one(files[next++]!);
  });
  await Promise.all(lanes);
  return failed;
}

/** `corral transcribe <files...>`: speech to text through the queue, one transcript file per input. */
export function transcribeCommand(ctx: CliContext): Command {
  const command = new Command("transcribe")
    .description(
      "transcribe audio files (wav, mp3, flac, ogg, webm) through the scheduler's Whisper models, writing a .txt, .srt, .vtt or .json beside each file or into -o DIR",
    )
    .argument("<files...>", "audio files")
    .option("-m, --model <id>", "Whisper model id (default: the first Whisper model the scheduler serves)")
    .addOption(
      new Option("-f, --format <format>", "transcript format").choices(Object.keys(TRANSCRIPT_FORMATS)).default("txt"),
    )
    .option("-o, --output-dir <dir>", "write the transcripts here instead of beside each file")
    .option("--language <code>", "the spoken language as an ISO-639-1 code (en, de…); default: detect it")
    .option("--prompt <text>", "text that guides the style or spelling (Whisper's initial prompt)")
    .option("--translate", "translate the speech to English (POST /v1/audio/translations)")
    .option("--concurrency <n>", "files in flight at once", intArg, 4);
  const client = withClientOptions(command, ctx);
  command.action(async (files: string[], opts: TranscribeOptions) => {
    const failed = await transcribeFiles(client(), files, opts, (line) => ctx.io.err(line));
    if (failed > 0) throw new CliError(`${failed} of ${files.length} files failed`);
    ctx.io.err(`${files.length} file${files.length === 1 ? "" : "s"} transcribed`);
  });
  return command;
}
