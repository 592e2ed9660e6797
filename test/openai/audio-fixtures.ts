import { readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { audioFixturesDir, sharedModelsDir } from "../support/models.js";

/** The shared speech fixtures (`jfk.wav`, `jfk.mp3`: 11.0 s of JFK). */
export { audioFixturesDir };
export const jfkWav = (): Buffer => readFileSync(join(audioFixturesDir(), "jfk.wav"));
export const jfkMp3 = (): Buffer => readFileSync(join(audioFixturesDir(), "jfk.mp3"));
export const JFK_SECONDS = 11;
export const JFK_REFERENCE =
  "And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country.";

/** whisper.cpp's English test model (vocabulary only: it runs the pipeline and writes no words). */
export const WHISPER_TEST_MODEL = "for-tests-ggml-tiny.en";
export const WHISPER_TEST_MULTILINGUAL = "for-tests-ggml-tiny";

/**
 * A trained Whisper model in the shared `whisper/` folder (any `.bin` that is not one of
 * whisper.cpp's `for-tests-*` models and is over 10 MB), or null when there is none.
 */
export function trainedWhisperModel(): { id: string; file: string } | null {
  const dir = join(sharedModelsDir(), "whisper");
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return null;
  }
  for (const name of names.sort()) {
    if (!name.endsWith(".bin") || name.startsWith("for-tests-")) continue;
    if (statSync(join(dir, name)).size < 10 * 1024 * 1024) continue;
    return { id: name.replace(/\.bin$/, ""), file: join(dir, name) };
  }
  return null;
}

/** A multipart audio request body: `file` (as `filename`) and the fields, repeated ones as arrays. */
export function audioForm(
  file: Buffer | null,
  fields: Record<string, string | string[]>,
  filename = "jfk.wav",
): FormData {
  const form = new FormData();
  if (file !== null) form.append("file", new Blob([new Uint8Array(file)]), filename);
  for (const [name, value] of Object.entries(fields))
    for (const v of Array.isArray(value) ? value : [value]) form.append(name, v);
  return form;
}

/** Word error rate of `hypothesis` against `reference`: word-level edit distance over the reference's words (case and punctuation ignored). */
export function wordErrorRate(reference: string, hypothesis: string): number {
  const words = (text: string) =>
    text
      .toLowerCase()
      .replace(/[^\p{L}\p{N}' ]+/gu, " ")
      .split(/\s+/)
      .filter(Boolean);
  const ref = words(reference);
  const hyp = words(hypothesis);
  let previous = Array.from({ length: hyp.length + 1 }, (_, j) => j);
  for (let i = 1; i <= ref.length; i++) {
    const row = [i];
    for (let j = 1; j <= hyp.length; j++) {
      const substitution = previous[j - 1]! + (ref[i - 1] === hyp[j - 1] ? 0 : 1);
      row.push(Math.min(previous[j]! + 1, row[j - 1]! + 1, substitution));
    }
    previous = row;
  }
  return ref.length === 0 ? (hyp.length === 0 ? 0 : 1) : previous[hyp.length]! / ref.length;
}
