import { createHash } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/**
 * A local stand-in for Hugging Face's file endpoints, for tests. It answers the way
 * huggingface.co does (checked against huggingface_hub's and node-llama-cpp's clients):
 * - `HEAD|GET /<owner>/<repo>/resolve/<rev>/<path>`: a 302 to a CDN URL on ANOTHER origin
 *   (a second server), with `x-linked-etag: "<sha256>"`, `x-linked-size`, `x-repo-commit`;
 *   401 `x-error-code: RepoNotFound` for an unknown repo, 401 `GatedRepo` without the
 *   right bearer token on a gated one, 404 `EntryNotFound` for a missing file;
 * - `GET /api/models/<owner>/<repo>/tree/<rev>?recursive=true`: the file list with
 *   `lfs: {oid: <sha256>, size}`;
 * - the CDN serves the bytes with `Range` support (206 + `Content-Range`).
 * Faults: drop the connection after N bytes (the first K times), advertise a wrong
 * sha256 or a huge size, serve HTML instead of the file.
 */
export interface MockRepoFile {
  content: Buffer;
  /** Advertise this sha256 instead of the real one. */
  advertisedSha256?: string;
  /** Advertise this size instead of the real one. */
  advertisedSize?: number;
  /** Close the connection after this many body bytes, for the first `dropTimes` GETs. */
  dropAfterBytes?: number;
  dropTimes?: number;
  /** Serve this instead of the content (an HTML page where a model was expected); size and sha256 are this one's. */
  serveInstead?: Buffer;
}

export interface MockRepo {
  files: Record<string, MockRepoFile>;
  /** Only this bearer token may read it. */
  gatedToken?: string;
}

export interface SeenRequest {
  server: "hub" | "cdn";
  method: string;
  url: string;
  range: string | undefined;
  authorization: string | undefined;
}

export interface MockHuggingFace {
  /** The hub's base URL (CORRAL_HF_ENDPOINT). */
  endpoint: string;
  /** The CDN's origin (another port: another origin). */
  cdnOrigin: string;
  repos: Map<string, MockRepo>;
  requests: SeenRequest[];
  close(): Promise<void>;
}

export const sha256 = (data: Buffer): string => createHash("sha256").update(data).digest("hex");
const COMMIT = "0123456789abcdef0123456789abcdef01234567";

async function listen(server: Server): Promise<string> {
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function errorAnswer(res: ServerResponse, status: number, code: string, message: string): void {
  res.writeHead(status, { "content-type": "application/json", "x-error-code": code, "x-error-message": message });
  res.end(JSON.stringify({ error: message }));
}

export async function startMockHuggingFace(repos: Record<string, MockRepo>): Promise<MockHuggingFace> {
  const state = new Map(Object.entries(repos));
  const requests: SeenRequest[] = [];
  const blobs = new Map<string, MockRepoFile>(); // CDN key → file
  const drops = new Map<MockRepoFile, number>();
  const note = (server: "hub" | "cdn", req: IncomingMessage) =>
    requests.push({
      server,
      method: req.method ?? "",
      url: req.url ?? "",
      range: req.headers.range,
      authorization: req.headers.authorization,
    });

  const cdn = createServer((req, res) => {
    note("cdn", req);
    const file = blobs.get(decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname.slice(1)));
    if (!file) return errorAnswer(res, 404, "NotFound", "no such blob");
    const body = file.serveInstead ?? file.content;
    let start = 0;
    let end = body.length - 1;
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? "");
    if (req.headers.range !== undefined && range) {
      start = Number(range[1]);
      if (range[2]) end = Math.min(end, Number(range[2]));
      if (start >= body.length) {
        res.writeHead(416, { "content-range": `bytes */${body.length}` });
        return res.end();
      }
    }
    const headers: Record<string, string | number> = {
      "accept-ranges": "bytes",
      "content-type": file.serveInstead ? "text/html" : "application/octet-stream",
      "content-length": end - start + 1,
    };
    if (req.headers.range !== undefined && range) headers["content-range"] = `bytes ${start}-${end}/${body.length}`;
    res.writeHead(req.headers.range !== undefined && range ? 206 : 200, headers);
    if (req.method === "HEAD") return res.end();
    const slice = body.subarray(start, end + 1);
    const dropped = drops.get(file) ?? 0;
    if (file.dropAfterBytes !== undefined && dropped < (file.dropTimes ?? 1)) {
      drops.set(file, dropped + 1);
      res.write(slice.subarray(0, file.dropAfterBytes), () => {
        // What a reset connection looks like to the client: the body ends short.
        setTimeout(() => res.socket?.destroy(), 20);
      });
      return;
    }
    res.end(slice);
  });
  const cdnOrigin = await listen(cdn);

  const hub = createServer((req, res) => {
    note("hub", req);
    const url = new URL(req.url ?? "/", "http://x");
    const tree = /^\/api\/models\/([^/]+\/[^/]+)\/tree\/([^/]+)$/.exec(url.pathname);
    const resolve = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname);
    const repoName = tree?.[1] ?? resolve?.[1];
    const repo = repoName ? state.get(repoName) : undefined;
    if (!repoName || (!tree && !resolve)) return errorAnswer(res, 404, "NotFound", "Not Found");
    // Hugging Face answers 401 for a repo it does not show you, existing or not.
    if (!repo) return errorAnswer(res, 401, "RepoNotFound", "Repository not found");
    if (repo.gatedToken !== undefined && req.headers.authorization !== `Bearer ${repo.gatedToken}`) {
      return errorAnswer(
        res,
        401,
        "GatedRepo",
        `Access to model ${repoName} is restricted. You must have access to it and be authenticated to access it. Please log in.`,
      );
    }
    if (tree) {
      const entries = Object.entries(repo.files).map(([path, file]) => ({
        type: "file",
        oid: createHash("sha1").update(file.content).digest("hex"),
        size: file.advertisedSize ?? file.content.length,
        path,
        lfs: {
          oid: file.advertisedSha256 ?? sha256(file.content),
          size: file.advertisedSize ?? file.content.length,
          pointerSize: 134,
        },
      }));
      res.writeHead(200, { "content-type": "application/json" });
      return res.end(JSON.stringify(entries));
    }
    const path = decodeURIComponent(resolve![3]!);
    const file = repo.files[path];
    if (!file) return errorAnswer(res, 404, "EntryNotFound", `${path} does not exist on "main"`);
    const key = `${repoName}/${path}`;
    blobs.set(key, file);
    const served = file.serveInstead ?? file.content;
    const sha = file.advertisedSha256 ?? sha256(served);
    res.writeHead(302, {
      location: `${cdnOrigin}/${encodeURIComponent(key)}`,
      "x-linked-etag": `"${sha}"`,
      "x-linked-size": String(file.advertisedSize ?? served.length),
      "x-repo-commit": COMMIT,
      etag: `W/"${createHash("sha1").update(path).digest("hex")}"`,
    });
    res.end();
  });
  const endpoint = await listen(hub);

  return {
    endpoint,
    cdnOrigin,
    repos: state,
    requests,
    async close() {
      for (const server of [hub, cdn]) {
        server.closeAllConnections();
        await new Promise<void>((done) => server.close(() => done()));
      }
    },
  };
}
