import { PullError } from "./errors.js";

/** What `corral models pull` was asked for. */
export type ModelRef =
  /** `hf:<owner>/<repo>/<path>.gguf`: one file (all its parts when it is a split GGUF); or a whisper.cpp `<path>.bin`. */
  | { kind: "hf-file"; repo: string; revision: string; path: string }
  /** `hf:<owner>/<repo>:<quant>`: the repo's GGUF of that quantization. */
  | { kind: "hf-quant"; repo: string; revision: string; quant: string }
  /** A plain http(s) URL. */
  | { kind: "url"; url: string };

const REF_HELP =
  "use hf:<owner>/<repo>/<file>.gguf (or a whisper.cpp <file>.bin), hf:<owner>/<repo>:<quant> (for example hf:ggml-org/models:Q4_K_M) or an https:// URL";
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** Splits `owner/repo[@revision]`, checking both names. */
function repoAndRevision(text: string, ref: string): { repo: string; revision: string } {
  const at = text.indexOf("@");
  const repo = at < 0 ? text : text.slice(0, at);
  const revision = at < 0 ? "main" : text.slice(at + 1);
  const parts = repo.split("/");
  if (parts.length !== 2 || !parts.every((p) => NAME.test(p)))
    throw new PullError("bad_ref", `${JSON.stringify(ref)} does not name a Hugging Face repository as <owner>/<repo>`, {
      hint: REF_HELP,
    });
  if (revision === "" || /[\s?#]/.test(revision))
    throw new PullError("bad_ref", `${JSON.stringify(ref)} has an empty or bad revision after @`, { hint: REF_HELP });
  return { repo, revision };
}

/**
 * Parses a model reference:
 * - `hf:owner/repo/file.gguf`, `hf:owner/repo/sub/dir/file.gguf`, `hf:owner/repo@rev/file.gguf`;
 * - `hf:owner/repo/ggml-tiny.en.bin`: a whisper.cpp model;
 * - `hf:owner/repo:Q4_K_M` (a quantization; `hf:owner/repo@rev:Q4_K_M` too);
 * - `https://…` or `http://…`.
 * Anything else throws a {@link PullError} with code `bad_ref`.
 */
export function parseModelRef(ref: string): ModelRef {
  const text = ref.trim();
  if (/^https?:\/\//i.test(text)) {
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      throw new PullError("bad_ref", `${JSON.stringify(ref)} is not a valid URL`, { hint: REF_HELP });
    }
    if (url.pathname === "/" || url.pathname.endsWith("/"))
      throw new PullError("bad_ref", `${JSON.stringify(ref)} does not name a file`, { hint: REF_HELP });
    return { kind: "url", url: url.href };
  }
  if (!/^hf:/i.test(text))
    throw new PullError("bad_ref", `${JSON.stringify(ref)} is not a model reference`, { hint: REF_HELP });
  const body = text.slice(3).replace(/^\/+/, "");
  const colon = body.lastIndexOf(":");
  if (colon >= 0) {
    const quant = body.slice(colon + 1);
    if (!/^[A-Za-z0-9_.-]+$/.test(quant) || /\.gguf$/i.test(quant))
      throw new PullError("bad_ref", `${JSON.stringify(ref)} has a bad quantization after ':'`, { hint: REF_HELP });
    return { kind: "hf-quant", ...repoAndRevision(body.slice(0, colon), ref), quant };
  }
  const segments = body.split("/");
  if (segments.length < 3)
    throw new PullError("bad_ref", `${JSON.stringify(ref)} names no file: add /<file>.gguf or :<quant>`, {
      hint: REF_HELP,
    });
  const { repo, revision } = repoAndRevision(segments.slice(0, 2).join("/"), ref);
  const path = segments.slice(2).join("/");
  if (!/\.(gguf|bin)$/i.test(path) || segments.slice(2).some((s) => s === "" || s === "." || s === ".."))
    throw new PullError("bad_ref", `${JSON.stringify(ref)} does not end in a .gguf (or whisper.cpp .bin) file`, {
      hint: REF_HELP,
    });
  return { kind: "hf-file", repo, revision, path };
}

const SPLIT = /^(.*)-(\d{5})-of-(\d{5})\.gguf$/i;

/** `x-00001-of-00003.gguf` → the three part names; any other name → itself. */
export function splitParts(fileName: string): string[] {
  const match = SPLIT.exec(fileName);
  if (!match) return [fileName];
  const total = Number(match[3]);
  if (total < 1 || Number(match[2]) < 1 || Number(match[2]) > total) return [fileName];
  return Array.from({ length: total }, (_, i) => `${match[1]}-${String(i + 1).padStart(5, "0")}-of-${match[3]}.gguf`);
}

/** The part number (1-based) and count of a split GGUF name; `null` for a single file. */
export function splitPartOf(fileName: string): { part: number; of: number; stem: string } | null {
  const match = SPLIT.exec(fileName);
  return match ? { stem: match[1]!, part: Number(match[2]), of: Number(match[3]) } : null;
}

/** Whether `fileName` names a GGUF of quantization `quant` (`Q4_K_M` matches `x.Q4_K_M.gguf`, `x-q4_k_m-00001-of-00002.gguf`). */
export function matchesQuant(fileName: string, quant: string): boolean {
  const escaped = quant.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  // `Q4_K` must not pick `Q4_K_M`: the name may not go on with a letter, a digit or `_` and one.
  return new RegExp(`(^|[^A-Za-z0-9])${escaped}(?![A-Za-z0-9]|_[A-Za-z0-9])`, "i").test(
    fileName.replace(/\.gguf$/i, ""),
  );
}
