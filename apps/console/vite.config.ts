import { defineConfig } from "vite";

// The scheduler serves dist/ at /console (apps/scheduler/src/console/console-router.ts).
// Preact's automatic JSX runtime through esbuild: no Babel, no plugin.
export default defineConfig({
  base: "/console/",
  esbuild: { jsx: "automatic", jsxImportSource: "preact" },
  // `npx vite apps/console`: the dev server, with the API of a scheduler on the default port.
  server: { proxy: { "/v1": "http://127.0.0.1:8080" } },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "es2022",
    // No inline <script> or data: URLs: the page's CSP allows only its own files.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    sourcemap: false,
    reportCompressedSize: false,
  },
});
