#!/usr/bin/env node
'use strict';
// The `token-usage` command (package.json "bin", `npm run usage`): src/cli/usage-cli.ts.
// A development checkout runs the TypeScript source through @swc-node/register, so it is never
// stale; an image or install without src/ or dev dependencies runs the build in dist/.
const { existsSync } = require('node:fs');
const { join } = require('node:path');

const root = join(__dirname, '..');
const source = join(root, 'src', 'cli', 'usage-cli.ts');
let entry = join(root, 'dist', 'cli', 'usage-cli.js');
if (existsSync(source)) {
  try {
    const register = require.resolve('@swc-node/register', { paths: [root] });
    process.env.SWC_NODE_PROJECT = process.env.SWC_NODE_PROJECT || join(root, 'tsconfig.json');
    require(register);
    entry = source;
  } catch {
    // No dev dependencies: fall back to dist/.
  }
}
if (!existsSync(entry)) {
  process.stderr.write('token-usage: the CLI is not built: run `npm run build` first\n');
  process.exit(1);
}
require(entry)
  .main(process.argv.slice(2))
  .then(
    (code) => {
      process.exitCode = code;
    },
    (error) => {
      process.stderr.write(`token-usage: unexpected error: ${(error && error.stack) || error}\n`);
      process.exitCode = 1;
    },
  );
