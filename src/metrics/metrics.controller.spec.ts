import { wantsPrometheus } from './metrics.controller';

describe('metrics content negotiation', () => {
  it.each([
    [undefined, false],
    ['*/*', false],
    ['application/json', false],
    ['application/json, text/plain, */*', false],
    ['text/html,application/xhtml+xml,*/*;q=0.8', false],
    ['text/plain', true],
    ['text/plain;version=0.0.4', true],
    ['application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1', true],
  ])('Accept %p -> Prometheus text: %p', (accept, expected) => {
    expect(wantsPrometheus(accept)).toBe(expected);
  });
});
