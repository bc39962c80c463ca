import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type * as TypeScript from 'typescript';

export interface DashboardAsset {
  body: Buffer;
  contentType: string;
  etag: string;
}

export const DASHBOARD_PAGE = 'dashboard.html';
export const CHART_JS = 'chart.umd.js';
/** The page script and the formatters it imports: compiled by tsconfig.web.json into `public/`. */
export const BROWSER_MODULES = ['dashboard.browser', 'usage-format'] as const;
const STATIC_FILES = { [DASHBOARD_PAGE]: 'text/html; charset=utf-8', 'dashboard.css': 'text/css; charset=utf-8' } as const;
const JAVASCRIPT = 'text/javascript; charset=utf-8';

export interface DashboardAssetDirs {
  /** The web build's output (`npm run build`: dist/dashboard/public). */
  compiled: string;
  /** Folders holding the page's sources (HTML, CSS, TypeScript), first match wins. */
  sources: string[];
  /** tsconfig.web.json, for transpiling the sources when nothing was compiled. */
  webTsconfig: string;
}

/** Where the assets live beside this module, in dist/ after a build and in src/ under jest or ts-node. */
export function defaultAssetDirs(moduleDir = __dirname): DashboardAssetDirs {
  const root = resolve(moduleDir, '..', '..');
  return {
    compiled: join(moduleDir, 'public'),
    sources: [join(moduleDir, 'web'), join(root, 'src', 'dashboard', 'web')],
    webTsconfig: join(root, 'tsconfig.web.json'),
  };
}

function asset(body: Buffer | string, contentType: string): DashboardAsset {
  const bytes = typeof body === 'string' ? Buffer.from(body) : body;
  return { body: bytes, contentType, etag: `"${createHash('sha256').update(bytes).digest('base64url').slice(0, 27)}"` };
}

/**
 * Reads every asset of the dashboard once, into memory: the page, its stylesheet, its two ES
 * modules and Chart.js's UMD build from node_modules. Nothing is fetched at run time.
 * The modules come from the web build when there is one; a source checkout that has not been
 * built (jest, `nest start --watch`) transpiles the same TypeScript with tsconfig.web.json's options.
 */
export function loadDashboardAssets(dirs: DashboardAssetDirs): Map<string, DashboardAsset> {
  const assets = new Map<string, DashboardAsset>();
  const sourceDir = (file: string) => dirs.sources.find((dir) => existsSync(join(dir, file)));
  for (const [file, contentType] of Object.entries(STATIC_FILES)) {
    const dir = existsSync(join(dirs.compiled, file)) ? dirs.compiled : sourceDir(file);
    if (!dir) throw new Error(`dashboard asset ${file} not found in ${[dirs.compiled, ...dirs.sources].join(', ')}`);
    assets.set(file, asset(readFileSync(join(dir, file)), contentType));
  }
  let transpile: ((source: string, fileName: string) => string) | undefined;
  for (const name of BROWSER_MODULES) {
    const compiled = join(dirs.compiled, `${name}.js`);
    if (existsSync(compiled)) {
      assets.set(`${name}.js`, asset(readFileSync(compiled), JAVASCRIPT));
      continue;
    }
    const dir = sourceDir(`${name}.ts`);
    if (!dir) throw new Error(`dashboard module ${name}.js is not built (run npm run build) and its source is not available`);
    transpile ??= transpiler(dirs.webTsconfig);
    const file = join(dir, `${name}.ts`);
    assets.set(`${name}.js`, asset(transpile(readFileSync(file, 'utf8'), file), JAVASCRIPT));
  }
  assets.set(CHART_JS, asset(chartJsBundle(), JAVASCRIPT));
  return assets;
}

function transpiler(tsconfigPath: string): (source: string, fileName: string) => string {
  // typescript is a devDependency: needed only where the sources run unbuilt.
  const ts = require('typescript') as typeof TypeScript;
  const { config, error } = ts.readConfigFile(tsconfigPath, (path) => ts.sys.readFile(path));
  if (error) throw new Error(`cannot read ${tsconfigPath}: ${ts.flattenDiagnosticMessageText(error.messageText, '\n')}`);
  const { options } = ts.convertCompilerOptionsFromJson(config.compilerOptions, dirname(tsconfigPath));
  return (source, fileName) => ts.transpileModule(source, { compilerOptions: options, fileName }).outputText;
}

/** Chart.js's UMD bundle (not in the package's exports map, so located beside its main file). */
function chartJsBundle(): string {
  const file = join(dirname(require.resolve('chart.js')), CHART_JS);
  // The source map is not served; drop the comment so browsers do not ask for it.
  return readFileSync(file, 'utf8').replace(/\n\/\/# sourceMappingURL=\S+\s*$/, '\n');
}
