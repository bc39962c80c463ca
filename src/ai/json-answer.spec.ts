import { parseJsonAnswer } from './json-answer';

describe(parseJsonAnswer.name, () => {
  const object = { type: 'info', note: 'braces { inside } strings' };
  const json = JSON.stringify(object);

  it.each([
    ['the whole answer', json],
    ['the whole answer with whitespace', `\n  ${json}\n`],
    ['a ```json fence', '```json\n' + json + '\n```'],
    ['a bare fence with prose', 'Here you go:\n```\n' + json + '\n```\nEnjoy!'],
    ['prose before and after', `Sure! ${json} Anything else?`],
    ['prose with stray braces first', `Use {curly} {braces}. ${json}`],
    ['unicode and emoji', JSON.stringify({ ...object, note: 'Grüße 🚀 日本語' })],
  ])('reads JSON from %s', (_label, text) => {
    const answer = parseJsonAnswer(text);
    expect(answer.ok).toBe(true);
    expect(answer.ok && answer.value.type).toBe('info');
  });

  it.each([
    ['plain prose', 'The user asks a question.', 'answer contains no JSON object'],
    ['an empty answer', '', 'answer contains no JSON object'],
    ['a cut-off object', '{"type": "inf', 'it may have been cut off'],
    ['invalid JSON', "{type: 'info',}", "answer's JSON is invalid"],
    ['an array', '[1, 2]', 'answer contains no JSON object'],
  ])('rejects %s naming why', (_label, text, reason) => {
    const answer = parseJsonAnswer(text);
    expect(answer.ok).toBe(false);
    expect(!answer.ok && answer.error).toContain(reason);
  });
});
