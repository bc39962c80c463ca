import { RedisService } from '../src/redis/redis.service';
import { TcpProxy } from './support/tcp-proxy';
import { createTestApp, TestApp } from './support/test-app';

describe(`${RedisService.name} faults`, () => {
  let proxy: TcpProxy;
  let testApp: TestApp;

  const chat = (i: number) => testApp.api().post('/api/v1/orcha/chat').send({ user_id: `redis-fault-${i % 5}`, message: `Question ${i}` });
  const waitFor = async (check: () => boolean | Promise<boolean>, ms = 15_000) => {
    const deadline = Date.now() + ms;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error('condition not met in time');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };

  beforeAll(async () => {
    proxy = await TcpProxy.start({ host: '127.0.0.1', port: 6379 });
    testApp = await createTestApp({ REDIS_URL: `redis://127.0.0.1:${proxy.port}`, RATE_LIMIT_PER_MINUTE: 100_000 });
  });

  afterAll(async () => {
    await testApp.close();
    await proxy.stop();
  });

  it('keeps answering concurrent chats with no 5xx when Redis goes away mid-load, then recovers', async () => {
    const before = await Promise.all(Array.from({ length: 20 }, (_, i) => chat(i)));
    expect(before.every((response) => response.status === 200 && response.body.token_usage.tracking_enabled === true)).toBe(true);

    const during: Array<Promise<{ status: number; body: { token_usage?: { tracking_enabled: boolean } } }>> = [];
    for (let i = 0; i < 60; i += 1) {
      if (i === 20) proxy.block('refuse');
      during.push(chat(i));
      if (i % 10 === 0) await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const answered = await Promise.all(during);
    expect(answered.filter((response) => response.status >= 500)).toEqual([]);
    expect(answered.every((response) => response.status === 200)).toBe(true);
    await waitFor(() => !testApp.app.get(RedisService).isReady);
    const whileDown = await chat(1000);
    expect(whileDown.status).toBe(200);
    expect(whileDown.body.token_usage).toMatchObject({ tracking_enabled: false, current_usage: 0, reset_at: null });
    expect(whileDown.body.token_usage.tokens_added).toBeGreaterThan(0);

    proxy.unblock();
    await waitFor(() => testApp.app.get(RedisService).isReady);
    const after = await chat(2000);
    expect(after.status).toBe(200);
    expect(after.body.token_usage.tracking_enabled).toBe(true);
    expect(after.body.token_usage.current_usage).toBeGreaterThan(after.body.token_usage.tokens_added);

    // The ledger never depended on Redis: every answered request is in it.
    const ledger = await testApp.db.collection('user_token_usage').find({ userId: /^redis-fault-/ }).toArray();
    expect(ledger.reduce((sum, document) => sum + document.requestCount, 0)).toBe(20 + 60 + 2);
  });
});
