import { BadRequestException, Inject, Injectable, Logger, NotFoundException, ServiceUnavailableException } from '@nestjs/common';
import { InjectModel } from '@nestjs/mongoose';
import { Model, Types } from 'mongoose';
import { withinDeadline } from '../common/deadline';
import { AppConfig } from '../config/app-config';
import { API_KEY_FORMAT, generateApiKey, hashApiKey, secretsEqual } from './api-key';
import { ApiKey } from './api-key.schema';
import { BOOTSTRAP_ADMIN_KEY, BootstrapAdminKey, NoBootstrapAdminKey, isBootstrapAdminKey } from './bootstrap-admin-key';
import { ApiKeyResponseDto, CreatedApiKeyResponseDto } from './dto/api-key-response.dto';
import { CreateApiKeyDto } from './dto/create-api-key.dto';
import type { Principal } from './principal';

const LAST_USED_WRITE_INTERVAL_MS = 60_000;
const MAX_CACHED_KEYS = 10_000;

export type Authentication = { principal: Principal } | { failure: 'unknown' | 'revoked' };

interface CachedKey {
  principal: Principal;
  expiresAt: number;
  lastUsedWrittenAt: number;
}

type StoredKey = ApiKey & { _id: Types.ObjectId };

@Injectable()
export class ApiKeysService {
  private readonly logger = new Logger(ApiKeysService.name);
  /** Validated keys by hash, so a hot key costs no database round trip per request. */
  private readonly cache = new Map<string, CachedKey>();
  /** Keys revoked by this process, so a lookup that raced the revocation cannot re-cache them. */
  private readonly revokedHere = new Set<string>();
  private readonly bootstrap?: BootstrapAdminKey;

  constructor(
    @InjectModel(ApiKey.name) private readonly keys: Model<ApiKey>,
    private readonly config: AppConfig,
    @Inject(BOOTSTRAP_ADMIN_KEY) bootstrap: BootstrapAdminKey | NoBootstrapAdminKey,
  ) {
    if (isBootstrapAdminKey(bootstrap)) this.bootstrap = bootstrap;
  }

  async create(dto: CreateApiKeyDto): Promise<CreatedApiKeyResponseDto> {
    if (dto.role !== 'user' && dto.userId !== undefined) {
      throw new BadRequestException(`userId is only allowed for role user (got role ${dto.role})`);
    }
    const { key, prefix, hash } = generateApiKey(dto.role);
    const created = await this.keys.create({ prefix, hash, role: dto.role, userId: dto.userId, name: dto.name });
    return { ...toResponse(created.toObject() as StoredKey), key };
  }

  async list(): Promise<ApiKeyResponseDto[]> {
    const keys = await this.keys.find({}, { hash: 0 }).sort({ createdAt: -1, _id: -1 }).lean<StoredKey[]>().exec();
    return keys.map(toResponse);
  }

  /** Idempotent: revoking a revoked key answers its metadata again. */
  async revoke(id: string): Promise<ApiKeyResponseDto> {
    const _id = new Types.ObjectId(id);
    const revoked =
      (await this.keys.findOneAndUpdate({ _id, revokedAt: null }, { $set: { revokedAt: new Date() } }, { returnDocument: 'after' }).lean<StoredKey>().exec()) ??
      (await this.keys.findById(_id).lean<StoredKey>().exec());
    if (!revoked) throw new NotFoundException(`No API key with id "${id}"`);
    this.revokedHere.add(id);
    this.cache.delete(revoked.hash);
    return toResponse(revoked);
  }

  async authenticate(presented: string): Promise<Authentication> {
    if (this.bootstrap && secretsEqual(presented, this.bootstrap.key)) return { principal: this.bootstrap.principal };
    if (!API_KEY_FORMAT.test(presented)) return { failure: 'unknown' };

    const hash = hashApiKey(presented);
    const now = Date.now();
    const cached = this.cache.get(hash);
    if (cached && cached.expiresAt > now) {
      this.touch(cached, now);
      return { principal: cached.principal };
    }

    let stored: StoredKey | null;
    try {
      stored = await withinDeadline(this.keys.db, this.config.MONGODB_READ_TIMEOUT_MS, 'API key lookup', () => this.keys.findOne({ hash }).lean<StoredKey>().exec());
    } catch (error) {
      // MongoDB down or frozen: a key this process validated before keeps working (last known).
      if (cached) return { principal: cached.principal };
      this.logger.error(`API key lookup failed: ${(error as Error).message}`);
      throw new ServiceUnavailableException('API keys cannot be checked right now; retry shortly');
    }
    this.cache.delete(hash);
    if (!stored) return { failure: 'unknown' };
    if (stored.revokedAt || this.revokedHere.has(stored._id.toHexString())) return { failure: 'revoked' };

    const principal: Principal = Object.freeze({
      keyId: stored._id.toHexString(),
      role: stored.role,
      ...(stored.role === 'user' ? { userId: stored.userId } : {}),
    });
    const entry: CachedKey = { principal, expiresAt: now + this.config.API_KEY_CACHE_MS, lastUsedWrittenAt: stored.lastUsedAt?.getTime() ?? 0 };
    if (this.config.API_KEY_CACHE_MS > 0) {
      if (this.cache.size >= MAX_CACHED_KEYS) this.cache.delete(this.cache.keys().next().value!);
      this.cache.set(hash, entry);
    }
    this.touch(entry, now);
    return { principal };
  }

  /** lastUsedAt is informational: written at most once a minute per key, never awaited by the request. */
  private touch(entry: CachedKey, now: number): void {
    if (now - entry.lastUsedWrittenAt < LAST_USED_WRITE_INTERVAL_MS) return;
    entry.lastUsedWrittenAt = now;
    this.keys
      .updateOne({ _id: new Types.ObjectId(entry.principal.keyId), revokedAt: null }, { $set: { lastUsedAt: new Date(now) } })
      .exec()
      .catch((error: Error) => this.logger.warn(`Could not record lastUsedAt for key ${entry.principal.keyId}: ${error.message}`));
  }
}

function toResponse(key: StoredKey): ApiKeyResponseDto {
  return {
    id: key._id.toHexString(),
    prefix: key.prefix,
    role: key.role,
    userId: key.userId ?? null,
    name: key.name ?? null,
    createdAt: key.createdAt.toISOString(),
    lastUsedAt: key.lastUsedAt?.toISOString() ?? null,
    revokedAt: key.revokedAt?.toISOString() ?? null,
  };
}
