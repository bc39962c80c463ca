#!/usr/bin/env node
'use strict';
// `npm start` runs this first (prestart): it builds only when the build's inputs changed since the
// last build, so a restart with nothing changed starts at once. `npm run build` ends with
// `--stamp`, recording a digest of the inputs it built from.
// Contents, not modification times, are compared: checkouts, copies and clock skew change mtimes.
const { spawnSync } = require('node:child_process');
const { createHash } = require('node:crypto');
const { existsSync, readFileSync, readdirSync, writeFileSync } = require('node:fs');
const { join, relative, sep } = require('node:path');

const BUILD_CONFIG_FILES = ['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json', 'tsconfig.web.json', 'nest-cli.json'];
const STAMP = join('dist', '.build-inputs.sha256');

function filesUnder(directory) {
  if (!existsSync(directory)) return [];
  return readdirSync(directory, { withFileTypes: true }).flatMap((entry) => {
    const path = join(directory, entry.name);
    if (entry.isDirectory()) return filesUnder(path);
    return entry.isFile() ? [path] : [];
  });
}

/** Digest of every file the build reads from: src/ and the build's configuration. */
function inputsDigest(root) {
  const files = [...filesUnder(join(root, 'src')), ...BUILD_CONFIG_FILES.map((name) => join(root, name)).filter((path) => existsSync(path))];
  const hash = createHash('sha256');
  for (const path of files.map((file) => relative(root, file).split(sep).join('/')).sort()) {
    hash.update(`${path}\0`);
    hash.update(readFileSync(join(root, path)));
    hash.update('\0');
  }
  return hash.digest('hex');
}

function isFresh(root) {
  const stamp = join(root, STAMP);
  if (!existsSync(join(root, 'dist', 'main.js')) || !existsSync(stamp)) return false;
  return readFileSync(stamp, 'utf8').trim() === inputsDigest(root);
}

function main(argv, root) {
  if (argv.includes('--stamp')) {
    writeFileSync(join(root, STAMP), `${inputsDigest(root)}\n`);
    return 0;
  }
  if (isFresh(root)) {
    process.stdout.write('dist/ is up to date with src/: skipping the build\n');
    return 0;
  }
  const build = spawnSync('npm', ['run', 'build'], { cwd: root, stdio: 'inherit', shell: process.platform === 'win32' });
  return build.status ?? 1;
}

module.exports = { inputsDigest, isFresh };

if (require.main === module) process.exitCode = main(process.argv.slice(2), join(__dirname, '..'));
