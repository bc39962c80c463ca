import { BadRequestException, ForbiddenException, Logger, UnauthorizedException } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { AppConfig } from '../config/app-config';
import { Access, AccessPolicy } from './access.decorator';
import { AccessGuard, AUTH_DISABLED_PRINCIPAL, authorize } from './access.guard';
import type { ApiKeysService, Authentication } from './api-keys.service';
import type { Principal } from './principal';
import type { RateLimitService } from './rate-limit.service';

const user: Principal = { keyId: 'k1', role: 'user', userId: 'alice' };
const service: Principal = { keyId: 'k2', role: 'service' };
const admin: Principal = { keyId: 'k3', role: 'admin' };
const owner = (source: 'param' | 'body' | 'query', field: string): AccessPolicy => ({ level: 'user', owner: { source, field } });

describe(AccessGuard.name, () => {
  describe('authorize', () => {
    it.each([
      ['admin', admin, true],
      ['admin', service, false],
      ['admin', user, false],
      ['service', admin, true],
      ['service', service, true],
      ['service', user, false],
    ] as const)('%s level with a %s key', (level, principal, allowed) => {
      const run = () => authorize({ level }, principal, { params: {}, body: {}, query: {} });
      if (allowed) expect(run).not.toThrow();
      else expect(run).toThrow(ForbiddenException);
    });

    it('lets admin and service keys act for anyone and leaves an absent owner absent', () => {
      for (const principal of [admin, service]) {
        const request = { params: { userId: 'bob' }, body: {} as Record<string, unknown>, query: {} };
        authorize(owner('param', 'userId'), principal, request);
        authorize(owner('body', 'userId'), principal, request);
        expect(request.body).toEqual({});
      }
    });

    it('refuses a user key acting for someone else, naming the field and value', () => {
      expect(() => authorize(owner('param', 'userId'), user, { params: { userId: 'bob' }, body: undefined, query: {} })).toThrow(
        new ForbiddenException('userId "bob" does not belong to this API key'),
      );
      expect(() => authorize(owner('query', 'user_id'), user, { params: {}, body: undefined, query: { user_id: ['alice', 'bob'] } })).toThrow(
        'user_id ["alice","bob"] does not belong to this API key',
      );
      expect(() => authorize(owner('body', 'userId'), user, { params: {}, body: { userId: 'x'.repeat(500) }, query: {} })).toThrow(/\.\.\. does not belong/);
    });

    it('fills an absent (or null) owner with the key user, creating the body if needed', () => {
      const withNull = { params: {}, body: { prompt: 'x', userId: null } as Record<string, unknown>, query: {} };
      authorize(owner('body', 'userId'), user, withNull);
      expect(withNull.body).toEqual({ prompt: 'x', userId: 'alice' });

      const noBody: { params: unknown; body: unknown; query: unknown } = { params: {}, body: undefined, query: {} };
      authorize(owner('body', 'username'), user, noBody as never);
      expect(noBody.body).toEqual({ username: 'alice' });

      const query = { params: {}, body: undefined, query: {} as Record<string, unknown> };
      authorize(owner('query', 'userId'), user, query);
      expect(query.query).toEqual({ userId: 'alice' });
    });

    it('answers 400 for a body that is not an object', () => {
      expect(() => authorize(owner('body', 'userId'), user, { params: {}, body: ['alice'], query: {} })).toThrow(BadRequestException);
      expect(() => authorize(owner('body', 'userId'), user, { params: {}, body: 'alice', query: {} })).toThrow(BadRequestException);
    });
  });

  describe('canActivate', () => {
    class Controller {
      undeclared(): void {}
      @Access('public') open(): void {}
      @Access('admin') adminOnly(): void {}
    }

    const guardWith = (authentication: Authentication, config: Partial<AppConfig> = {}) => {
      const apiKeys = { authenticate: jest.fn(async () => authentication) } as unknown as ApiKeysService;
      const rateLimits = { consume: jest.fn(async () => undefined) } as unknown as RateLimitService;
      return { guard: new AccessGuard(new Reflector(), apiKeys, rateLimits, { AUTH_DISABLED: false, ...config } as AppConfig), apiKeys, rateLimits };
    };
    const contextFor = (handler: keyof Controller, headers: Record<string, string> = {}) => {
      const request: Record<string, unknown> = { headers, params: {}, query: {}, body: {} };
      const reply = { header: jest.fn() };
      const context = {
        getHandler: () => Controller.prototype[handler],
        getClass: () => Controller,
        switchToHttp: () => ({ getRequest: () => request, getResponse: () => reply }),
      };
      return { context: context as never, request, reply };
    };

    it('denies a route without @Access, even for an admin key', async () => {
      const { guard, apiKeys } = guardWith({ principal: admin });
      jest.spyOn(Logger.prototype, 'error').mockImplementationOnce(() => undefined);
      await expect(guard.canActivate(contextFor('undeclared', { authorization: 'Bearer tl_admin_x' }).context)).rejects.toBeInstanceOf(ForbiddenException);
      expect(apiKeys.authenticate).not.toHaveBeenCalled();
    });

    it('lets anyone through a public route without looking at keys', async () => {
      const { guard, apiKeys } = guardWith({ failure: 'unknown' });
      await expect(guard.canActivate(contextFor('open').context)).resolves.toBe(true);
      expect(apiKeys.authenticate).not.toHaveBeenCalled();
    });

    it('answers 401 with WWW-Authenticate for a missing or unknown key', async () => {
      const { guard } = guardWith({ failure: 'unknown' });
      const missing = contextFor('adminOnly');
      await expect(guard.canActivate(missing.context)).rejects.toBeInstanceOf(UnauthorizedException);
      expect(missing.reply.header).toHaveBeenCalledWith('www-authenticate', expect.stringMatching(/^Bearer/));
      await expect(guard.canActivate(contextFor('adminOnly', { 'x-api-key': 'nope' }).context)).rejects.toThrow('Unknown API key');
    });

    it('sets the principal and counts the request before checking the role', async () => {
      const { guard, rateLimits } = guardWith({ principal: user });
      const { context, request } = contextFor('adminOnly', { authorization: 'bearer tl_user_abc' });
      await expect(guard.canActivate(context)).rejects.toBeInstanceOf(ForbiddenException);
      expect(request.principal).toBe(user);
      expect(rateLimits.consume).toHaveBeenCalledWith(user, expect.anything());
    });

    it('acts as admin for everything when AUTH_DISABLED', async () => {
      const { guard, apiKeys } = guardWith({ failure: 'unknown' }, { AUTH_DISABLED: true });
      const { context, request } = contextFor('adminOnly');
      await expect(guard.canActivate(context)).resolves.toBe(true);
      expect(request.principal).toBe(AUTH_DISABLED_PRINCIPAL);
      expect(apiKeys.authenticate).not.toHaveBeenCalled();
    });
  });

  it('refuses an @Access("user") without a well-formed owner at decoration time', () => {
    expect(() => Access('user', { owner: 'header:userId' as never })).toThrow(/owner/);
    expect(() => (Access as (level: string) => unknown)('user')).toThrow(/owner/);
  });
});
