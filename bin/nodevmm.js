#!/usr/bin/env node
// The CLI is TypeScript compiled to dist/ by `npm ci` / `npm run build:ts` (the package's prepare script).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const main = new URL('../dist/lib/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(main))) {
  process.stderr.write('nodevmm: the TypeScript is not built yet; run `npm ci` (or `npm run build:ts`) first\n');
  process.exit(1);
}
const { runCli } = await import(main.href);
process.exitCode = await runCli(process.argv.slice(2));
