// Builds src/ into one minified IIFE (default: ../collector/static/c.js) and prints raw, gzip and brotli sizes.
// Usage: node build.mjs [--outfile PATH]
import { build } from "esbuild";
import { readFileSync } from "node:fs";
import { gzipSync, brotliCompressSync, constants } from "node:zlib";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const outfile = args[0] == "--outfile" ? args[1] : join(here, "..", "collector", "static", "c.js");
const { version } = JSON.parse(readFileSync(join(here, "package.json"), "utf8"));

await build({
  entryPoints: [join(here, "src", "index.js")],
  outfile,
  bundle: true,
  minify: true,
  format: "iife",
  target: "es2020",
  charset: "utf8",
  legalComments: "none",
  define: { VERSION: JSON.stringify(version) },
  // Nothing may throw into the page, not even reading the configuration at start.
  banner: { js: "try{" },
  footer: { js: "}catch(e){}" },
  logLevel: "warning",
});

const code = readFileSync(outfile);
const gzip = gzipSync(code, { level: 9 }).length;
const brotli = brotliCompressSync(code, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }).length;
console.log(`${outfile}: ${code.length} B raw, ${gzip} B gzip, ${brotli} B brotli (budget 1536 B gzip)`);
