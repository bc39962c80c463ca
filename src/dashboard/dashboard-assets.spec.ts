import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CHART_JS, DASHBOARD_PAGE, defaultAssetDirs, loadDashboardAssets } from './dashboard-assets';

describe('loadDashboardAssets', () => {
  let empty: string;

  beforeAll(() => {
    empty = mkdtempSync(join(tmpdir(), 'dashboard-assets-'));
  });

  afterAll(() => rmSync(empty, { recursive: true, force: true }));

  it('serves the web build when there is one', () => {
    const compiled = mkdtempSync(join(tmpdir(), 'dashboard-public-'));
    try {
      writeFileSync(join(compiled, 'dashboard.browser.js'), 'export const built = true;\n');
      writeFileSync(join(compiled, 'usage-format.js'), 'export const formats = true;\n');
      const assets = loadDashboardAssets({ ...defaultAssetDirs(), compiled });
      expect(assets.get('dashboard.browser.js')?.body.toString()).toBe('export const built = true;\n');
      expect(assets.get('usage-format.js')?.contentType).toBe('text/javascript; charset=utf-8');
      expect(assets.get(DASHBOARD_PAGE)?.body.toString()).toContain('<title>Token usage');
    } finally {
      rmSync(compiled, { recursive: true, force: true });
    }
  });

  it('transpiles the TypeScript sources to ES modules when nothing was built', () => {
    const assets = loadDashboardAssets({ ...defaultAssetDirs(), compiled: empty });
    const page = assets.get('dashboard.browser.js')!.body.toString();
    expect(page).toContain("from './usage-format.js'");
    expect(page).not.toMatch(/^import type/m);
    expect(page).not.toContain('require(');
    expect(assets.get('usage-format.js')!.body.toString()).toMatch(/^export function formatTokens\(tokens\) \{/m);
  });

  it('ships Chart.js from node_modules without its source-map comment, and tags every file', () => {
    const assets = loadDashboardAssets({ ...defaultAssetDirs(), compiled: empty });
    const chart = assets.get(CHART_JS)!.body.toString();
    expect(chart).toContain('Chart');
    expect(chart).not.toContain('sourceMappingURL');
    expect(new Set([...assets.values()].map((asset) => asset.etag)).size).toBe(assets.size);
    expect([...assets.keys()].sort()).toEqual(['chart.umd.js', 'dashboard.browser.js', 'dashboard.css', 'dashboard.html', 'usage-format.js']);
  });

  it('says what is missing when neither a build nor the sources are there', () => {
    expect(() => loadDashboardAssets({ compiled: empty, sources: [empty], webTsconfig: join(empty, 'tsconfig.web.json') })).toThrow(
      /dashboard asset dashboard\.html not found/,
    );
  });
});
