/** OpenAI models with structured outputs (also behind OpenRouter as openai/...); others get json_object. */
const JSON_SCHEMA_MODELS = /^(openai\/)?(gpt-4o|gpt-4\.1|gpt-5|o[134])(-|$)/;

/** Whether a model takes `response_format: { type: "json_schema" }`; a hint, never relied on. */
export function acceptsJsonSchema(model: string): boolean {
  return JSON_SCHEMA_MODELS.test(model);
}
