import { ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { createTestApp, TestApp } from './support/test-app';
import { uniqueDbName, testMongoUri } from './support/test-database';

const freshness = require('../scripts/build-if-stale.js') as { inputsDigest(root: string): string; isFresh(root: string): boolean };

const ROOT = join(__dirname, '..');
const STARTUP_TIMEOUT_MS = 90_000;

interface RunningService {
  baseUrl: string;
  stdout(): string;
  stderr(): string;
  stop(): Promise<void>;
}

interface SpawnedService {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  exited: Promise<number | null>;
}

/**
 * `npm start` as a newcomer runs it, from the TypeScript source: a process of its own in an empty
 * directory (no .env), with none of the variables a configured deployment would have.
 */
function spawnService(dir: string, env: Record<string, string>): SpawnedService {
  const childEnv: NodeJS.ProcessEnv = { ...process.env };
  for (const name of ['MONGODB_URI', 'ADMIN_API_KEY', 'AUTH_DISABLED', 'CORS_ORIGINS', 'AI_PROVIDER', 'OPENROUTER_API_KEY', 'AI_API_KEY', 'AI_BASE_URL']) {
    delete childEnv[name];
  }
  Object.assign(childEnv, {
    NODE_ENV: 'development',
    LOG_LEVEL: 'info',
    PORT: '0',
    HOST: '127.0.0.1',
    SWC_NODE_PROJECT: join(ROOT, 'tsconfig.json'),
    DEV_ADMIN_KEY_FILE: join(dir, 'data', 'dev-admin-key'),
    MONGODB_DATA_DIR: join(dir, 'data', 'mongo'),
    OUTBOX_DIR: join(dir, 'data', 'outbox'),
    LOG_DIR: join(dir, 'logs'),
    REDIS_KEY_PREFIX: `test:${uniqueDbName('quickstart')}:`,
    // Offline, as on this machine: the mongod download fails, as a newcomer without internet sees it.
    MONGOMS_DOWNLOAD_DIR: join(dir, 'mongod-binaries'),
    MONGOMS_DOWNLOAD_URL: 'http://127.0.0.1:9/linux/mongodb-linux-x86_64-debian12-8.2.6.tgz',
    ...env,
  });
  const child: ChildProcess = spawn(process.execPath, ['-r', require.resolve('@swc-node/register'), join(ROOT, 'src', 'main.ts')], {
    cwd: dir,
    env: childEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, stdout: () => stdout, stderr: () => stderr, exited };
}

async function startService(dir: string, env: Record<string, string>): Promise<RunningService> {
  const service = spawnService(dir, env);
  const baseUrl = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`service did not start:\n${service.stdout()}\n${service.stderr()}`)), STARTUP_TIMEOUT_MS);
    const check = () => {
      const match = /token-ledger listening on (http:\/\/[^\s]+)/.exec(service.stdout());
      if (match) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    };
    service.child.stdout!.on('data', check);
    void service.exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`service exited during start-up:\n${service.stdout()}\n${service.stderr()}`));
    });
  });
  return {
    baseUrl,
    stdout: service.stdout,
    stderr: service.stderr,
    async stop() {
      service.child.kill('SIGTERM');
      await service.exited;
    },
  };
}

const stackLines = (text: string) => text.split('\n').filter((line) => /^\s+at\s/.test(line) || /\\n\s+at\s/.test(line));
const jsonLines = (text: string) =>
  text
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as { level: number; msg: string });

/** The plain banner's key line: four spaces, then the key alone. */
const printedKey = (stdout: string) => /^ {4}(tl_admin_[A-Za-z0-9]+)$/m.exec(stdout)?.[1];

describe('Quick start (npm start on embedded defaults)', () => {
  let dir: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'quick-start-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('prints a development admin key once, plainly, with the Swagger UI and dashboard URLs; the key works; a restart keeps it', async () => {
    const first = await startService(dir, {});
    let key: string | undefined;
    try {
      const out = first.stdout();
      key = printedKey(out);
      expect(key).toBeDefined();
      expect(out.split(key!).length - 1).toBe(2); // the key line and the curl example: one banner
      expect(out).toContain(`Swagger UI  ${first.baseUrl}/docs`);
      expect(out).toContain(`Dashboard   ${first.baseUrl}/usage`);
      expect(readFileSync(join(dir, 'data', 'dev-admin-key'), 'utf8').trim()).toBe(key);

      // No raw stack on start-up, although the mongod download failed and the service fell back.
      expect(first.stderr()).toBe('');
      expect(stackLines(out)).toEqual([]);
      expect(jsonLines(out).some((line) => /mongodb-memory-server unavailable/.test(line.msg))).toBe(true);

      await request(first.baseUrl).get('/admin/api-keys').expect(401);
      await request(first.baseUrl).get('/admin/api-keys').set('authorization', `Bearer ${key}`).expect(200);
      const created = await request(first.baseUrl)
        .post('/admin/api-keys')
        .set('x-api-key', key!)
        .send({ role: 'user', userId: 'newcomer' })
        .expect(201);
      await request(first.baseUrl).get('/api/v1/tokens/usage/newcomer').set('x-api-key', created.body.key).expect(200);
      await request(first.baseUrl).get('/docs').expect(200);
      await request(first.baseUrl).get('/usage').expect(200);

      // A second start on the same port says so in one line, with no stack.
      const clash = spawnService(mkdtempSync(join(dir, 'clash-')), { PORT: new URL(first.baseUrl).port });
      expect(await clash.exited).toBe(1);
      expect(clash.stderr()).toMatch(/^token-ledger could not start: port \d+ on 127\.0\.0\.1 is already in use .*set PORT\n$/);
      expect(stackLines(clash.stdout() + clash.stderr())).toEqual([]);
    } finally {
      await first.stop();
    }
    expect(stackLines(first.stdout() + first.stderr())).toEqual([]);

    const second = await startService(dir, {});
    try {
      expect(printedKey(second.stdout())).toBe(key);
      expect(second.stdout()).toContain('kept in');
      await request(second.baseUrl).get('/admin/api-keys').set('authorization', `Bearer ${key}`).expect(200);
    } finally {
      await second.stop();
    }
  }, 240_000);

  it('with an external MONGODB_URI invents no key and says at warn level how to set one', async () => {
    const external = mkdtempSync(join(dir, 'external-'));
    const service = await startService(external, { MONGODB_URI: testMongoUri(), MONGODB_DB_NAME: uniqueDbName('quickstart') });
    try {
      expect(printedKey(service.stdout())).toBeUndefined();
      expect(existsSync(join(external, 'data', 'dev-admin-key'))).toBe(false);
      const warning = jsonLines(service.stdout()).find((line) => line.level === 40 && line.msg.includes('ADMIN_API_KEY'));
      expect(warning?.msg).toMatch(/Set ADMIN_API_KEY .* and restart/);
      await request(service.baseUrl).get('/admin/api-keys').set('authorization', 'Bearer tl_admin_notakeyatall0123456789012345678901').expect(401);
      expect(service.stderr()).toBe('');
    } finally {
      await service.stop();
    }
  }, 180_000);
});

describe('scripts/build-if-stale.js (prestart)', () => {
  let root: string;

  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'build-if-stale-'));
    mkdirSync(join(root, 'src', 'feature'), { recursive: true });
    writeFileSync(join(root, 'src', 'main.ts'), 'export {};\n');
    writeFileSync(join(root, 'src', 'feature', 'a.service.ts'), 'export const a = 1;\n');
    writeFileSync(join(root, 'package.json'), '{}\n');
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  const build = () => {
    mkdirSync(join(root, 'dist'), { recursive: true });
    writeFileSync(join(root, 'dist', 'main.js'), '');
    writeFileSync(join(root, 'dist', '.build-inputs.sha256'), `${freshness.inputsDigest(root)}\n`);
  };

  it('is stale with no build, fresh right after one, stale again after any change to src or the build config', () => {
    expect(freshness.isFresh(root)).toBe(false);
    build();
    expect(freshness.isFresh(root)).toBe(true);

    writeFileSync(join(root, 'src', 'feature', 'a.service.ts'), 'export const a = 2;\n');
    expect(freshness.isFresh(root)).toBe(false);
    build();
    writeFileSync(join(root, 'src', 'feature', 'b.service.ts'), '');
    expect(freshness.isFresh(root)).toBe(false);
    build();
    rmSync(join(root, 'src', 'feature', 'b.service.ts'));
    expect(freshness.isFresh(root)).toBe(false);
    build();
    writeFileSync(join(root, 'tsconfig.json'), '{}\n');
    expect(freshness.isFresh(root)).toBe(false);
    build();
    rmSync(join(root, 'dist', 'main.js'));
    expect(freshness.isFresh(root)).toBe(false);
  });
});

describe('Bootstrap admin keys on one Redis', () => {
  const apps: TestApp[] = [];
  afterAll(async () => {
    for (const app of apps) await app.close();
  });

  it('count requests per key: deployments with different ADMIN_API_KEYs never share a rate-limit budget', async () => {
    const prefix = `test:${uniqueDbName('shared-redis')}:`;
    const start = (key: string) => createTestApp({ ADMIN_API_KEY: key, REDIS_KEY_PREFIX: prefix, RATE_LIMIT_PER_MINUTE: 3 });
    apps.push(await start('first-deployment-admin-key'), await start('second-deployment-admin-key'), await start('first-deployment-admin-key'));
    const [first, second, firstAgain] = apps;

    for (let i = 0; i < 3; i += 1) await first.api().get('/admin/api-keys').expect(200);
    await first.api().get('/admin/api-keys').expect(429);
    const other = await second.api().get('/admin/api-keys').expect(200);
    expect(other.headers['x-ratelimit-remaining']).toBe('2');
    // The same key on another instance shares the budget, as every other key does.
    await firstAgain.api().get('/admin/api-keys').expect(429);
  }, 120_000);
});

describe('Revoking an API key', () => {
  let testApp: TestApp;
  beforeAll(async () => {
    testApp = await createTestApp();
  });
  afterAll(() => testApp.close());

  it('prints no deprecation warning (mongoose deprecated the `new` option of findOneAndUpdate)', async () => {
    const warnings: string[] = [];
    const emitWarning = jest.spyOn(process, 'emitWarning').mockImplementation((warning: string | Error) => void warnings.push(String(warning)));
    try {
      const created = await testApp.api().post('/admin/api-keys').send({ role: 'service' }).expect(201);
      const revoked = await testApp.api().delete(`/admin/api-keys/${created.body.id}`).expect(200);
      expect(revoked.body.revokedAt).toEqual(expect.any(String));
      await testApp.api().delete(`/admin/api-keys/${created.body.id}`).expect(200);
    } finally {
      emitWarning.mockRestore();
    }
    expect(warnings).toEqual([]);
  });
});
