import { parseIntent, simulatedIntent } from './chat-intent';

describe('chat intent', () => {
  it.each([
    ['{"type":"info"}', 'info'],
    ['{"type": "modification"}', 'modification'],
    ['```json\n{"type":"MODIFICATION"}\n```', 'modification'],
    ['modification', 'modification'],
    ['I am not sure', 'info'],
    ['', 'info'],
  ])('parses %j as %s', (text, intent) => {
    expect(parseIntent(text)).toBe(intent);
  });

  it('classifies change requests as modifications for the simulated provider', () => {
    expect(simulatedIntent('Please add a /home command')).toBe('modification');
    expect(simulatedIntent('How do permissions work?')).toBe('info');
  });
});
