// Bundles the offline web app (app.ts and the client it imports) for the demo project to serve at /app/.
import { build } from "esbuild";
import { fileURLToPath } from "node:url";

const here = (path) => fileURLToPath(new URL(path, import.meta.url));

await build({
  entryPoints: [here("./app.ts"), here("./sw.ts")],
  outdir: here("../../../../demo_project/offline_app/static/offline_app/build/"),
  bundle: true,
  format: "esm",
  target: "es2020",
  sourcemap: true,
  logLevel: "info",
});
