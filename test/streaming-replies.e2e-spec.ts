import type request from 'supertest';
import { createTestApp, TestApp } from './support/test-app';

const sseText = (res: request.Response, callback: (error: Error | null, body: unknown) => void) => {
  const stream = res as unknown as NodeJS.ReadableStream;
  let body = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => (body += chunk));
  stream.on('end', () => callback(null, body));
};

/** Nest's reply to a handler's return value comes after the stream ended: give it a moment to be logged. */
const settled = () => new Promise((resolve) => setTimeout(resolve, 200));

describe('Streaming replies (server-sent events)', () => {
  let testApp: TestApp;

  beforeAll(async () => {
    testApp = await createTestApp();
    await testApp.api().post('/embeddings').send({ resourceId: 'astro', content: 'Saturn has rings of ice and rock.', userId: 'stream-user' }).expect(200);
  });

  afterAll(() => testApp.close());

  const alreadySent = () =>
    testApp.logs().filter((line) => JSON.stringify(line).includes('FST_ERR_REP_ALREADY_SENT') || /already sent/i.test(line.msg));

  it.each([
    ['/v1/chat/completions', { model: 'any', user: 'stream-user', stream: true, messages: [{ role: 'user', content: 'Hello there' }] }],
    ['/api/v1/search/answer', { query: 'Which planet has rings?', userId: 'stream-user', stream: true }],
  ])('%s with stream: true answers the whole stream and logs no FST_ERR_REP_ALREADY_SENT warning', async (path, body) => {
    const response = await testApp.api().post(path).send(body).buffer(true).parse(sseText).expect(200);
    expect(response.headers['content-type']).toMatch(/^text\/event-stream/);
    expect(response.body as string).toMatch(/data: \[DONE\]\n\n$/);
    await settled();
    expect(alreadySent()).toEqual([]);
  });

  it('still answers the same routes with JSON without stream', async () => {
    const completion = await testApp.api()
      .post('/v1/chat/completions')
      .send({ model: 'any', user: 'stream-user', messages: [{ role: 'user', content: 'Hello there' }] })
      .expect(200);
    expect(completion.body.object).toBe('chat.completion');
    const answer = await testApp.api().post('/api/v1/search/answer').send({ query: 'Which planet has rings?', userId: 'stream-user' }).expect(200);
    expect(typeof answer.body.answer).toBe('string');
    await settled();
    expect(alreadySent()).toEqual([]);
  });
});
