import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { getMetadataStorage } from 'class-validator';
import { AppConfig, validateConfig } from './app-config';

describe('.env.example', () => {
  const text = readFileSync(join(__dirname, '..', '..', '.env.example'), 'utf8');
  const documented = new Set([...text.matchAll(/^#?\s*([A-Z][A-Z0-9_]+)=/gm)].map((match) => match[1]));
  const declared = new Set(
    getMetadataStorage()
      .getTargetValidationMetadatas(AppConfig, '', true, false)
      .map((metadata) => metadata.propertyName),
  );

  it('documents every variable AppConfig declares, and nothing else', () => {
    expect([...declared].filter((name) => !documented.has(name))).toEqual([]);
    expect([...documented].filter((name) => !declared.has(name))).toEqual([]);
  });

  it('holds values that validate', () => {
    const values = Object.fromEntries([...text.matchAll(/^([A-Z][A-Z0-9_]+)=(.*)$/gm)].map((match) => [match[1], match[2]]));
    expect(() => validateConfig(values)).not.toThrow();
  });
});
