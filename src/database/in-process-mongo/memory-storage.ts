import { ErrorCode, MongoCommandError } from './mongo-error';
import { MemoryCollection } from './memory-collection';

const INVALID_DB_CHARS = /[/\\. "$*<>:|?\0]/;

export function validateDatabaseName(db: unknown): string {
  if (typeof db !== 'string' || db.length === 0 || db.length >= 64 || INVALID_DB_CHARS.test(db)) {
    throw new MongoCommandError(ErrorCode.InvalidNamespace, `Invalid database name: '${String(db)}'`);
  }
  return db;
}

export function validateCollectionName(db: string, name: unknown): string {
  if (typeof name !== 'string') {
    throw new MongoCommandError(ErrorCode.InvalidNamespace, `collection name has invalid type ${typeof name}`);
  }
  if (name.length === 0 || name.includes('$') || name.includes('\0') || name.startsWith('.')) {
    throw new MongoCommandError(ErrorCode.InvalidNamespace, `Invalid namespace specified '${db}.${name}'`);
  }
  if (name.startsWith('system.')) {
    throw new MongoCommandError(ErrorCode.InvalidNamespace, `Invalid system namespace: ${db}.${name}`);
  }
  return name;
}

/** Databases and their collections. A database exists while it has a collection. */
export class MemoryStorage {
  private readonly databases = new Map<string, Map<string, MemoryCollection>>();

  collection(db: string, name: string): MemoryCollection | undefined {
    return this.databases.get(db)?.get(name);
  }

  /** The collection, created implicitly as a write or createIndexes would. */
  collectionForWrite(db: string, name: string): { collection: MemoryCollection; created: boolean } {
    const existing = this.collection(db, name);
    if (existing) return { collection: existing, created: false };
    return { collection: this.createCollection(db, name), created: true };
  }

  createCollection(db: string, name: string): MemoryCollection {
    validateDatabaseName(db);
    validateCollectionName(db, name);
    if (this.collection(db, name)) {
      throw new MongoCommandError(ErrorCode.NamespaceExists, `Collection ${db}.${name} already exists.`);
    }
    let collections = this.databases.get(db);
    if (!collections) this.databases.set(db, (collections = new Map()));
    const collection = new MemoryCollection(db, name);
    collections.set(name, collection);
    return collection;
  }

  dropCollection(db: string, name: string): boolean {
    const collections = this.databases.get(db);
    if (!collections?.delete(name)) return false;
    if (collections.size === 0) this.databases.delete(db);
    return true;
  }

  dropDatabase(db: string): void {
    this.databases.delete(db);
  }

  databaseNames(): string[] {
    return [...this.databases.keys()];
  }

  collections(db: string): MemoryCollection[] {
    return [...(this.databases.get(db)?.values() ?? [])];
  }

  /** One pass of the TTL monitor over every collection with a TTL index. */
  removeExpired(now: number): number {
    let removed = 0;
    for (const collections of this.databases.values()) {
      for (const collection of collections.values()) {
        if (collection.hasTtlIndex) removed += collection.removeExpired(now);
      }
    }
    return removed;
  }
}
