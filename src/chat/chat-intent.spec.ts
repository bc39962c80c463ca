import { parseIntent, simulatedIntent } from './chat-intent';

describe('chat intent', () => {
  it.each([
    ['{"type":"info"}', 'info'],
    ['{"type": "modification"}', 'modification'],
    ['```json\n{"type":"MODIFICATION"}\n```', 'modification'],
    ['modification', 'modification'],
    ['I am not sure', 'info'],
    ['', 'info'],
    ['Sure! Here is the classification:\n{"type": "modification"}\nHope that helps.', 'modification'],
    ["I'm sorry, but I can't help with that request.", 'info'],
    ['The user wants to know how commands work; this is an info request, not a modification.', 'info'],
  ])('parses %j as %s', (text, intent) => {
    expect(parseIntent(text)).toBe(intent);
  });

  it('classifies change requests as modifications for the simulated provider', () => {
    expect(simulatedIntent('Please add a /home command')).toBe('modification');
    expect(simulatedIntent('How do permissions work?')).toBe('info');
  });
});
