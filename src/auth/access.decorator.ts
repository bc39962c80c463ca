import { applyDecorators, SetMetadata } from '@nestjs/common';
import { ApiBearerAuth, ApiExtension, ApiSecurity } from '@nestjs/swagger';
import { ApiErrorResponses } from '../common/api-responses.decorator';

export const ACCESS_METADATA = 'token-ledger:access';
/** Names of the security schemes declared in app.factory's DocumentBuilder. */
export const BEARER_SCHEME = 'bearer';
export const API_KEY_SCHEME = 'api-key';
export const METRICS_SCHEME = 'metrics-token';

export type OwnerSource = `param:${string}` | `body:${string}` | `query:${string}`;
export type AccessLevel = 'public' | 'admin' | 'service' | 'user';

export type AccessPolicy =
  | { level: 'public' }
  | { level: 'admin' }
  | { level: 'service' }
  | { level: 'user'; owner: { source: 'param' | 'body' | 'query'; field: string } };

type AccessDecorator = MethodDecorator & ClassDecorator;

const OWNER_SOURCE = /^(param|body|query):([A-Za-z_$][\w$]*)$/;

const LEVEL_DESCRIPTIONS: Record<Exclude<AccessLevel, 'public'>, string> = {
  admin: 'requires an admin API key',
  service: 'requires an admin or service API key',
  user: 'admin and service keys may act for any user; a user key only for its own user',
};

/**
 * Declares who may call a route (or every route of a controller); AccessGuard enforces it
 * and denies any route that declares nothing.
 * - `public`: no key needed.
 * - `admin`: admin keys only.
 * - `service`: admin or service keys.
 * - `user`: any key, but a user key only for the userId found at `owner`; when that field is
 *   absent the guard fills in the key's userId, so a user key never acts untracked.
 */
export function Access(level: 'public'): AccessDecorator;
export function Access(level: 'admin'): AccessDecorator;
export function Access(level: 'service'): AccessDecorator;
export function Access(level: 'user', options: { owner: OwnerSource }): AccessDecorator;
export function Access(level: AccessLevel, options?: { owner: OwnerSource }): AccessDecorator {
  const policy = toPolicy(level, options);
  // An empty security requirement documents that no key is needed.
  if (policy.level === 'public') return applyDecorators(SetMetadata(ACCESS_METADATA, policy), ApiSecurity({})) as AccessDecorator;
  const description = policy.level === 'user'
    ? `${LEVEL_DESCRIPTIONS.user} (${policy.owner.source} ${policy.owner.field})`
    : LEVEL_DESCRIPTIONS[policy.level];
  return applyDecorators(
    SetMetadata(ACCESS_METADATA, policy),
    ApiBearerAuth(BEARER_SCHEME),
    ApiSecurity(API_KEY_SCHEME),
    ApiExtension('x-access', { level: policy.level, ...(policy.level === 'user' ? { owner: options!.owner } : {}) }),
    ApiErrorResponses('unauthorized', { kind: 'forbidden', description: `The key's role or user may not do this: ${description}` }, 'rate-limit'),
  ) as AccessDecorator;
}

function toPolicy(level: AccessLevel, options?: { owner: OwnerSource }): AccessPolicy {
  if (level !== 'user') return { level };
  const match = OWNER_SOURCE.exec(options?.owner ?? '');
  if (!match) throw new Error(`@Access('user') needs { owner: 'param:<name>' | 'body:<name>' | 'query:<name>' } (got ${String(options?.owner)})`);
  return { level, owner: { source: match[1] as 'param' | 'body' | 'query', field: match[2] } };
}
