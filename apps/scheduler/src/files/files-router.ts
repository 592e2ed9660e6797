import { pipeline } from "node:stream/promises";
import { Router, type Request, type Response } from "express";
import { z } from "zod";
import { FilePurpose, InvalidRequestError } from "@corral/shared";
import { principalOf } from "../auth/authenticate.js";
import { invalidRequestFromZod } from "../http/zod-error.js";
import { toFileObject, type FileService, type ListFilesOptions } from "./file-service.js";
import { receiveUpload } from "./receive-upload.js";
import { bindLog } from "../http/request-context.js";

const digits = (value: unknown): unknown =>
  typeof value === "string" && /^\d{1,6}$/.test(value) ? Number(value) : value;

const ListQuery = z.object({
  purpose: FilePurpose.optional(),
  limit: z.preprocess(digits, z.number().int().min(1).max(10_000)).optional(),
  after: z.string().optional(),
  order: z.enum(["asc", "desc"]).optional(),
});

/**
 * OpenAI's files API, mounted at `/v1/files`: `POST /v1/files` (multipart, `purpose=batch`), `GET /v1/files`,
 * `GET /v1/files/:id`, `GET /v1/files/:id/content` (streamed), `DELETE /v1/files/:id`.
 */
export function filesRouter(files: FileService): Router {
  const router = Router();

  router.post("/", async (req: Request, res: Response) => {
    const { tenant } = principalOf(res.locals);
    const stored = await receiveUpload(req, files, tenant);
    bindLog(res, { file_id: stored.id });
    res.json(toFileObject(stored));
  });

  router.get("/", async (req: Request, res: Response) => {
    const { tenant } = principalOf(res.locals);
    const parsed = ListQuery.safeParse(req.query);
    if (!parsed.success) throw invalidRequestFromZod(parsed.error);
    const options: ListFilesOptions = {};
    if (parsed.data.purpose !== undefined) options.purpose = parsed.data.purpose;
    if (parsed.data.limit !== undefined) options.limit = parsed.data.limit;
    if (parsed.data.after !== undefined) options.after = parsed.data.after;
    if (parsed.data.order !== undefined) options.order = parsed.data.order;
    res.json(await files.list(tenant, options));
  });

  router.get("/:id", async (req: Request, res: Response) => {
    const { tenant } = principalOf(res.locals);
    res.json(toFileObject(await files.get(tenant, param(req, "id"))));
  });

  router.get("/:id/content", async (req: Request, res: Response) => {
    const { tenant } = principalOf(res.locals);
    const { file, content } = await files.open(tenant, param(req, "id"));
    res.status(200);
    // res.attachment writes the name with RFC 5987 `filename*` (any Unicode) and an ASCII fallback.
    res.attachment(file.filename);
    res.setHeader("content-type", "application/jsonl");
    res.setHeader("content-length", String(file.bytes));
    try {
      await pipeline(content, res);
    } catch (error) {
      // The client went away, or the file vanished mid-read: nothing more can be sent.
      res.locals.log.debug({ err: error }, "file download ended early");
      res.destroy();
    }
  });

  router.delete("/:id", async (req: Request, res: Response) => {
    const { tenant } = principalOf(res.locals);
    res.json(await files.remove(tenant, param(req, "id")));
  });

  return router;
}

function param(req: Request, name: string): string {
  const value = req.params[name];
  if (typeof value !== "string") throw new InvalidRequestError(`Missing \`${name}\`.`, name);
  return value;
}
