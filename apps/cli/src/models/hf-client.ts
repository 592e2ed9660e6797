import { posix } from "node:path";
import { PullError } from "./errors.js";
import { matchesQuant, splitPartOf, splitParts, type ModelRef } from "./model-ref.js";

/** One file to download. */
export interface RemoteFile {
  /** The file name it gets in the models folder. */
  name: string;
  url: string;
  /** Bytes, when the server says. */
  size: number | null;
  /** Lowercase hex sha256, when known (Hugging Face's LFS object id, or `--sha256`). */
  sha256: string | null;
}

export interface HfClientOptions {
  /** Hugging Face's base URL (`CORRAL_HF_ENDPOINT` / `HF_ENDPOINT`), without a trailing slash. */
  endpoint: string;
  /** Sent as `Authorization: Bearer …` to the endpoint's origin only; never printed. */
  token?: string | undefined;
  /**
   * Limit for a request's answer headers, and for a pause between two body chunks.
   * @defaultValue 60000
   */
  timeoutMs?: number;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const SHA256 = /^[0-9a-f]{64}$/;

/** Hugging Face's `x-linked-etag: "…"` (the LFS sha256) without quotes or `W/`. */
function sha256Of(etag: string | null): string | null {
  const value = etag?.replace(/^W\//, "").replace(/"/g, "").trim().toLowerCase() ?? "";
  return SHA256.test(value) ? value : null;
}

/** What a request saw: the final answer plus the x-linked-* headers of any hop. */
export interface Followed {
  response: Response;
  url: string;
  linkedSize: number | null;
  linkedSha256: string | null;
}

/**
 * Talks to Hugging Face (or a server that answers like it): resolves references to files
 * and opens downloads. Redirects are followed by hand, so the token goes only to the
 * endpoint's own origin (Hugging Face redirects file bodies to a CDN with signed URLs).
 */
export class HfClient {
  readonly endpoint: string;
  readonly timeoutMs: number;
  readonly #token: string | undefined;

  constructor(options: HfClientOptions) {
    this.endpoint = options.endpoint.replace(/\/+$/, "");
    this.#token = options.token?.trim() || undefined;
    this.timeoutMs = options.timeoutMs ?? 60_000;
  }

  get hasToken(): boolean {
    return this.#token !== undefined;
  }

  /** `…/owner/repo/resolve/main/dir/file.gguf`, each path segment encoded. */
  resolveUrl(repo: string, revision: string, path: string): string {
    const encoded = path.split("/").map(encodeURIComponent).join("/");
    return `${this.endpoint}/${repo}/resolve/${encodeURIComponent(revision)}/${encoded}`;
  }

  /** The repo's page, for messages. */
  repoPage(repo: string): string {
    return `${this.endpoint}/${repo}`;
  }

  /**
   * Sends one request, following up to 5 redirects. `signal` aborts it. Returns the
   * final answer whatever its status.
   */
  async request(
    url: string,
    init: { method: "GET" | "HEAD"; range?: string; signal?: AbortSignal },
  ): Promise<Followed> {
    const origin = new URL(this.endpoint).origin;
    let current = url;
    let linkedSize: number | null = null;
    let linkedSha256: string | null = null;
    for (let hop = 0; hop <= 5; hop++) {
      const headers: Record<string, string> = { "user-agent": "corral-models-pull" };
      if (init.range) headers.range = init.range;
      if (this.#token && new URL(current).origin === origin) headers.authorization = `Bearer ${this.#token}`;
      const signal = init.signal ?? AbortSignal.timeout(this.timeoutMs);
      const response = await fetch(current, { method: init.method, headers, redirect: "manual", signal });
      linkedSha256 ??= sha256Of(response.headers.get("x-linked-etag"));
      const size = Number(response.headers.get("x-linked-size") ?? NaN);
      if (linkedSize === null && Number.isSafeInteger(size) && size >= 0) linkedSize = size;
      const location = response.headers.get("location");
      if (REDIRECTS.has(response.status) && location) {
        await response.body?.cancel().catch(() => undefined);
        current = new URL(location, current).href;
        continue;
      }
      return { response, url: current, linkedSize, linkedSha256 };
    }
    throw new PullError("http", `too many redirects from ${url}`);
  }

  /** Turns a failed answer into a PullError that says what to do. Consumes the body. */
  async failure(response: Response, what: string, repo?: string): Promise<PullError> {
    const code = response.headers.get("x-error-code") ?? "";
    const body = (await response.text().catch(() => "")).replace(/\s+/g, " ").trim().slice(0, 200);
    const page = repo ? this.repoPage(repo) : undefined;
    const status = `HTTP ${response.status}${body ? `: ${body}` : ""}`;
    if (response.status === 401 && code === "RepoNotFound") {
      return new PullError("not_found", `${what}: no such repository, or it is private (${status})`, {
        hint: this.hasToken
          ? "check the <owner>/<repo> spelling; a private repo needs a token of an account that can read it in HF_TOKEN"
          : "check the <owner>/<repo> spelling; for a private repo set HF_TOKEN to a read token (https://huggingface.co/settings/tokens)",
      });
    }
    if (response.status === 401) {
      return new PullError("unauthorized", `${what}: Hugging Face wants a token (${status})`, {
        hint: this.hasToken
          ? "HF_TOKEN was refused: create a new read token at https://huggingface.co/settings/tokens and set HF_TOKEN to it"
          : `set HF_TOKEN to a read token (https://huggingface.co/settings/tokens)${page ? ` and accept the model's terms on ${page}` : ""}`,
      });
    }
    if (response.status === 403) {
      return new PullError("unauthorized", `${what}: access denied (${status})`, {
        hint: `the repository is gated: accept its terms${page ? ` on ${page}` : ""} with the account whose token is in HF_TOKEN`,
      });
    }
    if (response.status === 404) {
      return new PullError("not_found", `${what}: not found (${status})`, {
        hint:
          code === "EntryNotFound" && page
            ? `the repository has no such file; see its files on ${page}/tree/main, or pull by quantization: hf:<owner>/<repo>:Q4_K_M`
            : "check the reference: hf:<owner>/<repo>/<file>.gguf, hf:<owner>/<repo>:<quant> or an https:// URL",
      });
    }
    return new PullError("http", `${what}: ${status}`, {
      hint: response.status >= 500 ? "the server failed; try again later" : undefined,
    });
  }

  /** The files a reference stands for, with their sizes and sha256 where the server tells them. */
  async resolve(ref: ModelRef): Promise<RemoteFile[]> {
    if (ref.kind === "url")
      return [await this.#probe(ref.url, posix.basename(decodeURIComponent(new URL(ref.url).pathname)))];
    if (ref.kind === "hf-file") {
      const dir = posix.dirname(ref.path);
      const names = splitParts(posix.basename(ref.path));
      const files: RemoteFile[] = [];
      for (const name of names) {
        const path = dir === "." ? name : `${dir}/${name}`;
        files.push(await this.#probe(this.resolveUrl(ref.repo, ref.revision, path), name, ref.repo));
      }
      return files;
    }
    return this.#byQuant(ref);
  }

  /** HEAD one file: its size and Hugging Face's sha256 (x-linked-etag). */
  async #probe(url: string, name: string, repo?: string): Promise<RemoteFile> {
    if (!/\.(gguf|bin)$/i.test(name))
      throw new PullError("bad_ref", `${url} does not name a .gguf (or whisper.cpp .bin) file`, {
        hint: "Corral serves GGUF models and whisper.cpp ggml .bin models only; pick the model's .gguf or ggml-*.bin file",
      });
    const head = await this.#send(url, "HEAD", `${name}`);
    if (!repo && (head.response.status === 405 || head.response.status === 501)) {
      // A plain server that does not answer HEAD: the download learns the size from its GET.
      await head.response.body?.cancel().catch(() => undefined);
      return { name, url, size: null, sha256: null };
    }
    if (!head.response.ok) throw await this.failure(head.response, `${repo ? `${repo}: ` : ""}${name}`, repo);
    await head.response.body?.cancel().catch(() => undefined);
    const length = Number(head.response.headers.get("content-length") ?? NaN);
    const size = head.linkedSize ?? (Number.isSafeInteger(length) && length >= 0 ? length : null);
    return { name, url, size, sha256: head.linkedSha256 };
  }

  async #send(url: string, method: "GET" | "HEAD", what: string): Promise<Followed> {
    try {
      return await this.request(url, { method });
    } catch (error) {
      if (error instanceof PullError) throw error;
      throw networkError(error, what, url);
    }
  }

  /** Lists the repo (Hugging Face's tree API) and picks the GGUF of `quant`, all its parts. */
  async #byQuant(ref: Extract<ModelRef, { kind: "hf-quant" }>): Promise<RemoteFile[]> {
    const url = `${this.endpoint}/api/models/${ref.repo}/tree/${encodeURIComponent(ref.revision)}?recursive=true`;
    const listed = await this.#send(url, "GET", ref.repo);
    if (!listed.response.ok) throw await this.failure(listed.response, ref.repo, ref.repo);
    const entries = (await listed.response.json()) as TreeEntry[];
    const ggufs = entries.filter((e) => e.type === "file" && /\.gguf$/i.test(e.path));
    const matching = ggufs.filter((e) => matchesQuant(posix.basename(e.path), ref.quant));
    const groups = new Map<string, TreeEntry[]>();
    for (const entry of matching) {
      const split = splitPartOf(entry.path);
      const key = split ? `${split.stem} (${split.of} parts)` : entry.path;
      groups.set(key, [...(groups.get(key) ?? []), entry]);
    }
    if (groups.size === 0) {
      const available = ggufs.map((e) => e.path).slice(0, 12);
      throw new PullError("not_found", `${ref.repo} has no .gguf file for quantization ${ref.quant}`, {
        hint:
          available.length > 0
            ? `its GGUF files: ${available.join(", ")}${ggufs.length > available.length ? ", …" : ""}`
            : `the repository holds no .gguf file at all; look for a "-GGUF" repository of the model`,
      });
    }
    if (groups.size > 1) {
      throw new PullError(
        "ambiguous",
        `${ref.repo} has ${groups.size} files for ${ref.quant}: ${[...groups.keys()].join(", ")}`,
        {
          hint: `name one: hf:${ref.repo}/<file>.gguf`,
        },
      );
    }
    const [entries0] = [...groups.values()];
    const parts = (entries0 ?? []).sort((a, b) => a.path.localeCompare(b.path));
    const first = parts[0]!;
    const expected = splitParts(posix.basename(first.path));
    const have = new Set(parts.map((p) => posix.basename(p.path)));
    const missing = expected.filter((name) => !have.has(name));
    if (missing.length > 0)
      throw new PullError("not_found", `${ref.repo}: the split GGUF ${first.path} lacks ${missing.join(", ")}`);
    return parts.map((entry) => {
      const sha = entry.lfs?.oid?.toLowerCase() ?? null;
      return {
        name: posix.basename(entry.path),
        url: this.resolveUrl(ref.repo, ref.revision, entry.path),
        size: entry.lfs?.size ?? entry.size ?? null,
        sha256: sha && SHA256.test(sha) ? sha : null,
      };
    });
  }
}

/** One entry of `GET /api/models/<repo>/tree/<rev>?recursive=true`. */
interface TreeEntry {
  type: "file" | "directory";
  path: string;
  size?: number;
  oid?: string;
  lfs?: { oid?: string; size?: number };
}

/** `fetch failed` hides the reason in `cause`: name it (ECONNREFUSED, a timeout). */
export function networkError(error: unknown, what: string, url: string): PullError {
  const cause = (error as { cause?: { code?: unknown; message?: unknown } } | null)?.cause;
  const name = (error as { name?: unknown } | null)?.name;
  const reason =
    name === "TimeoutError"
      ? "no answer in time"
      : typeof cause?.code === "string"
        ? cause.code
        : typeof cause?.message === "string"
          ? cause.message
          : error instanceof Error
            ? error.message
            : String(error);
  return new PullError("http", `${what}: could not reach ${new URL(url).origin} (${reason})`, {
    hint: "check the network, or CORRAL_HF_ENDPOINT / HF_ENDPOINT when you use a Hugging Face mirror",
    cause: error,
  });
}
