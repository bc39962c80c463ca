import { acceptsJsonSchema } from './structured-output';

describe(acceptsJsonSchema.name, () => {
  it.each([
    ['openai/gpt-4o-mini', true],
    ['gpt-4o', true],
    ['gpt-4o-2024-08-06', true],
    ['openai/gpt-4.1-nano', true],
    ['gpt-5', true],
    ['o3-mini', true],
    ['anthropic/claude-3.5-sonnet', false],
    ['llama3.1:8b', false],
    ['gpt-4-turbo', false],
  ])('%s -> %s', (model, expected) => {
    expect(acceptsJsonSchema(model)).toBe(expected);
  });
});
