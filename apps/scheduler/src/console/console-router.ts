import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import express, { Router, type NextFunction, type Request, type Response } from "express";

/** Where `npm run build` writes the console (apps/console/dist), seen from this file in apps/scheduler/dist/console/. */
export const DEFAULT_CONSOLE_DIR = fileURLToPath(new URL("../../../console/dist/", import.meta.url));

/**
 * The console's Content-Security-Policy: its own scripts, styles and API only. No inline
 * script or style, no other origin, no frames, no forms posting anywhere.
 */
export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "font-src 'self'",
  "manifest-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

function securityHeaders(_req: Request, res: Response, next: NextFunction): void {
  res.setHeader("Content-Security-Policy", CONSOLE_CSP);
  res.setHeader("X-Content-Type-Options", "nosniff");
  res.setHeader("X-Frame-Options", "DENY");
  res.setHeader("Referrer-Policy", "no-referrer");
  res.setHeader("Cross-Origin-Opener-Policy", "same-origin");
  next();
}

/**
 * Mounted at `/console`: the web console's static files (docs/console.md). It needs no
 * key: the files hold no data, and the page signs in against the API with the user's key.
 * Hashed assets (`/console/assets/*`) are immutable for a year; `index.html` is revalidated
 * every time (`no-cache`), so a new build is picked up on the next load. When the console
 * was not built, `/console` answers 404 saying so.
 */
export function consoleRouter(dir: string = DEFAULT_CONSOLE_DIR): Router {
  const router = Router();
  router.use(securityHeaders);
  const index = join(dir, "index.html");
  router.use("/assets", express.static(join(dir, "assets"), { immutable: true, maxAge: "365d", index: false }));
  router.get("/", (req: Request, res: Response) => {
    // `/console` → `/console/`, so the page's relative asset URLs resolve under /console/.
    if (!req.originalUrl.split("?")[0]!.endsWith("/")) {
      res.redirect(301, `${req.baseUrl}/`);
      return;
    }
    if (!existsSync(index)) {
      res.status(404).type("text/plain").send("The console is not built: run `npm run build` (apps/console).\n");
      return;
    }
    res.setHeader("Cache-Control", "no-cache");
    res.sendFile(index);
  });
  // Other files at the console's root (favicon.svg), revalidated like the page.
  router.use(
    express.static(dir, { index: false, maxAge: 0, setHeaders: (res) => res.setHeader("Cache-Control", "no-cache") }),
  );
  return router;
}
