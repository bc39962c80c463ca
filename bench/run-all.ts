/**
 * Reruns every benchmark and rewrites bench/RESULTS.md with their output:
 *   npm run bench
 * Builds the service first (the gateway and memory benchmarks run dist/main.js).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { machine } from './support/processes';

const ROOT = join(__dirname, '..');
const BENCHES: Array<{ script: string; title: string }> = [
  { script: 'bench/adapter-choice.ts', title: 'HTTP adapter choice (Fastify vs Express)' },
  { script: 'bench/gateway.ts', title: '1-2. Gateway overhead and throughput' },
  { script: 'bench/ledger.ts', title: '3. Ledger commands and write throughput' },
  { script: 'bench/tokenizer.ts', title: '4. Tokenizer' },
  { script: 'bench/analytics-period.ts', title: '5. Analytics over 1,000,000 events' },
  { script: 'bench/memory.ts', title: '6. Memory' },
  { script: 'bench/vector-search.ts', title: 'Vector search' },
];

function main() {
  execFileSync('npx', ['nest', 'build'], { cwd: ROOT, stdio: 'inherit' });
  const sections: string[] = [];
  for (const { script, title } of BENCHES) {
    if (!existsSync(join(ROOT, script))) continue;
    console.log(`\n=== ${title} (${script})`);
    const started = Date.now();
    const run = spawnSync(process.execPath, ['-r', '@swc-node/register', script], {
      cwd: ROOT,
      env: { ...process.env, SWCRC: 'true' },
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
      maxBuffer: 64 * 1024 * 1024,
    });
    process.stdout.write(run.stdout);
    const status = run.status === 0 ? '' : `\n(exited with ${run.status})`;
    sections.push(`## ${title}\n\n\`${script}\`, ${Math.round((Date.now() - started) / 1000)} s\n\n\`\`\`\n${run.stdout.trim()}${status}\n\`\`\`\n`);
  }
  const header = [
    '# Benchmark results',
    '',
    `Run with \`npm run bench\` on ${new Date().toISOString().slice(0, 10)}: ${machine()}.`,
    'Every figure below comes from that run; each section names the MongoDB it ran against',
    '(the in-process server unless MONGODB_URI was set). Load generator, provider stand-in,',
    'MongoDB and the service run as separate processes sharing the same cores.',
    '',
  ].join('\n');
  writeFileSync(join(ROOT, 'bench/RESULTS.md'), `${header}\n${sections.join('\n')}`);
  console.log('\nwrote bench/RESULTS.md');
}

main();
