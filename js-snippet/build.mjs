// Builds src/ into one minified script (default: ../collector/static/c.js), prints raw, gzip and brotli sizes, and
// fails when the gzip size is over the budget.
// Usage: node build.mjs [--outfile PATH]
//
// src/ is plain, readable JavaScript; all the compressing happens here. esbuild bundles the modules into one
// scope; terser then compresses and mangles (its names reuse the same few letters everywhere, which gzips about
// 30 bytes smaller than esbuild's own minifier). The result runs inside `try{...}catch{}`: nothing may throw into
// the page, not even reading the configuration.
import { build } from "esbuild";
import { minify } from "terser";
import { readFileSync, writeFileSync } from "node:fs";
import { gzipSync, brotliCompressSync, constants } from "node:zlib";
import { Script } from "node:vm";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const BUDGET = 1536; // bytes of c.js gzipped at level 9 (tests/e2e/test_snippet_build.py checks it too)

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const outfile = args[0] == "--outfile" ? args[1] : join(here, "..", "collector", "static", "c.js");
const { version } = JSON.parse(readFileSync(join(here, "package.json"), "utf8"));

// An ES module bundle: the modules' top-level declarations side by side, with no function around them (the
// try block below scopes them, which saves the bytes of an IIFE).
const bundle = await build({
  entryPoints: [join(here, "src", "index.js")],
  bundle: true,
  write: false,
  minifySyntax: true,
  format: "esm",
  target: "es2020",
  charset: "utf8",
  legalComments: "none",
  define: { VERSION: JSON.stringify(version) },
  logLevel: "warning",
});

const { ast } = await minify(bundle.outputFiles[0].text, {
  ecma: 2020,
  // The top-level names are the tracker's own (they end up in the try block), so terser may mangle and drop them.
  toplevel: true,
  compress: {
    passes: 2,
    // Reading a property has no side effect (the tracker defines no getters), so terser may move or drop a read,
    // e.g. fold `data.consent` into the one expression that uses it.
    pure_getters: true,
    // Number(x) → +x, the same conversion. unsafe_math would also regroup chains like `2 * x * 3` (not exact in
    // floating point): the tracker has none; look at the output if you add one.
    unsafe: true,
    unsafe_math: true,
    // true/false → 1/0: the tracker only tests them, or passes `true` as addEventListener's capture flag (any
    // truthy non-object means capture).
    booleans_as_integers: true,
  },
  mangle: true,
  format: { spidermonkey: true }, // an ESTree AST, to turn the top-level `var`s into `let`s below
});

// esbuild declares the modules' top-level const/let with `var`; inside the try block they must be `let`, or they
// would become properties of window. Refuse anything else that would be scoped outside the block: a `var` below
// the top level, or a function declaration (outside functions, both reach window).
const leaks = [];
const walk = (node, inFunction) => {
  if (Array.isArray(node)) return node.forEach((child) => walk(child, inFunction));
  if (!node || typeof node != "object") return;
  const isVar = node.type == "VariableDeclaration" && node.kind == "var";
  if (!inFunction && (isVar || node.type == "FunctionDeclaration")) leaks.push(isVar ? "var" : "function");
  for (const key in node) if (key != "loc") walk(node[key], inFunction || /Function/.test(node.type));
};
for (const statement of ast.body) if (statement.type == "VariableDeclaration") statement.kind = "let";
walk(ast.body, false);
if (leaks.length) fail(`the bundle declares outside functions: ${leaks.join(", ")}`);

const printed = await minify(ast, { parse: { spidermonkey: true }, compress: false, mangle: false, ecma: 2020 });
const code = Buffer.from(`try{${printed.code}}catch{}\n`);
new Script(code.toString(), { filename: outfile }); // parses as a classic script (e.g. no `let` declared twice)
writeFileSync(outfile, code);

// Node's zlib, at level 9 like the budget test (which uses Python's gzip: a few bytes either way).
const gzip = gzipSync(code, { level: 9 }).length;
const brotli = brotliCompressSync(code, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }).length;
console.log(`${outfile}: ${code.length} B raw, ${gzip} B gzip, ${brotli} B brotli (budget ${BUDGET} B gzip)`);
if (gzip > BUDGET) fail(`${gzip} B gzipped is over the ${BUDGET} B budget (${outfile} is written, for a look)`);

function fail(message) {
  console.error(`build.mjs: ${message}`);
  process.exit(1);
}
