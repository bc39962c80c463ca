import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { API_KEY_FORMAT } from './api-key';
import { BootstrapAdminKey, bootstrapPrincipal, resolveBootstrapAdminKey } from './bootstrap-admin-key';

describe(resolveBootstrapAdminKey.name, () => {
  let dir: string;
  let file: string;
  const embedded = () => ({ NODE_ENV: 'development' as const, AUTH_DISABLED: false, DEV_ADMIN_KEY_FILE: file });

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'dev-admin-key-'));
    file = join(dir, 'nested', 'dev-admin-key');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('uses ADMIN_API_KEY when set, and writes no file', () => {
    const resolved = resolveBootstrapAdminKey({ ...embedded(), ADMIN_API_KEY: 'configured-admin-key-0123' }) as BootstrapAdminKey;
    expect(resolved).toMatchObject({ key: 'configured-admin-key-0123', source: 'config' });
    expect(() => statSync(file)).toThrow();
  });

  it('on embedded defaults makes a key, keeps it in the file (0600) and reads the same key back', () => {
    const first = resolveBootstrapAdminKey(embedded()) as BootstrapAdminKey;
    expect(first.source).toBe('created');
    expect(first.key).toMatch(API_KEY_FORMAT);
    expect(first.file).toBe(file);
    expect(readFileSync(file, 'utf8')).toBe(`${first.key}\n`);
    expect(statSync(file).mode & 0o777).toBe(0o600);

    const second = resolveBootstrapAdminKey(embedded()) as BootstrapAdminKey;
    expect(second).toMatchObject({ key: first.key, source: 'file', file });
  });

  it('replaces a file that holds no usable key', () => {
    resolveBootstrapAdminKey(embedded());
    writeFileSync(file, 'short\n');
    const resolved = resolveBootstrapAdminKey(embedded()) as BootstrapAdminKey;
    expect(resolved.source).toBe('created');
    expect(readFileSync(file, 'utf8').trim()).toBe(resolved.key);
  });

  it.each([
    [{ MONGODB_URI: 'mongodb://db.example:27017' }, 'external-database'],
    [{ NODE_ENV: 'production' as const }, 'production'],
    [{ AUTH_DISABLED: true }, 'auth-disabled'],
  ])('never invents a key with %j', (overrides, reason) => {
    expect(resolveBootstrapAdminKey({ ...embedded(), ...overrides })).toEqual({ reason });
    expect(() => statSync(file)).toThrow();
  });
});

describe(bootstrapPrincipal.name, () => {
  it('gives each key its own admin key id, not derived reversibly from the key', () => {
    const a = bootstrapPrincipal('first-admin-key-0123456789');
    const b = bootstrapPrincipal('second-admin-key-0123456789');
    expect(a.role).toBe('admin');
    expect(a.keyId).toMatch(/^bootstrap-admin:[0-9a-f]{16}$/);
    expect(a.keyId).not.toBe(b.keyId);
    expect(bootstrapPrincipal('first-admin-key-0123456789').keyId).toBe(a.keyId);
    expect(a.keyId).not.toContain('first');
  });
});
