// Builds src/ into one minified IIFE (default: ../collector/static/c.js) and prints raw, gzip and brotli sizes.
// Usage: node build.mjs [--outfile PATH]
//
// esbuild bundles the modules (and folds constants); terser then compresses and mangles: its names reuse the
// same few letters in every scope, which gzip compresses about 30 bytes smaller than esbuild's own minifier.
import { build } from "esbuild";
import { minify } from "terser";
import { readFileSync, writeFileSync } from "node:fs";
import { gzipSync, brotliCompressSync, constants } from "node:zlib";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const outfile = args[0] == "--outfile" ? args[1] : join(here, "..", "collector", "static", "c.js");
const { version } = JSON.parse(readFileSync(join(here, "package.json"), "utf8"));

const bundle = await build({
  entryPoints: [join(here, "src", "index.js")],
  bundle: true,
  write: false,
  minifySyntax: true,
  format: "iife",
  target: "es2020",
  charset: "utf8",
  legalComments: "none",
  define: { VERSION: JSON.stringify(version) },
  logLevel: "warning",
});
const { code: minified } = await minify(bundle.outputFiles[0].text, {
  ecma: 2020,
  // pure_getters: reading a property has no side effect (the tracker defines no getters), so terser may move or
  // drop a read, e.g. fold `data.consent` into the one expression that uses it.
  compress: { passes: 2, pure_getters: true },
  mangle: true,
});
// Nothing may throw into the page, not even reading the configuration at start.
const code = Buffer.from(`try{${minified}}catch{}\n`);
writeFileSync(outfile, code);

const gzip = gzipSync(code, { level: 9 }).length;
const brotli = brotliCompressSync(code, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }).length;
console.log(`${outfile}: ${code.length} B raw, ${gzip} B gzip, ${brotli} B brotli (budget 1536 B gzip)`);
