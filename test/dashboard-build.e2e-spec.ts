import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { defaultAssetDirs, loadDashboardAssets } from '../src/dashboard/dashboard-assets';

const ROOT = join(__dirname, '..');

describe('dashboard web build (tsconfig.web.json)', () => {
  it('compiles the page and the shared formatters to the ES modules a source checkout serves', async () => {
    const outDir = mkdtempSync(join(tmpdir(), 'dashboard-web-build-'));
    const nothingBuilt = mkdtempSync(join(tmpdir(), 'dashboard-none-'));
    try {
      await promisify(execFile)(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.web.json', '--outDir', outDir], { cwd: ROOT });
      const transpiled = loadDashboardAssets({ ...defaultAssetDirs(), compiled: nothingBuilt });
      for (const file of ['dashboard.browser.js', 'usage-format.js']) {
        expect(readFileSync(join(outDir, file), 'utf8')).toBe(transpiled.get(file)!.body.toString());
      }
      const built = loadDashboardAssets({ ...defaultAssetDirs(), compiled: outDir });
      expect(built.get('dashboard.browser.js')!.etag).toBe(transpiled.get('dashboard.browser.js')!.etag);
    } finally {
      rmSync(outDir, { recursive: true, force: true });
      rmSync(nothingBuilt, { recursive: true, force: true });
    }
  });
});
