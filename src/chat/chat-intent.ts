export const CHAT_INTENTS = ['info', 'modification'] as const;
export type ChatIntent = (typeof CHAT_INTENTS)[number];

export const INTENT_INSTRUCTIONS =
  'Classify the user\'s message about their Minecraft plugin. Answer with JSON only: {"type":"info"} when they ask ' +
  'a question or want an explanation, {"type":"modification"} when they want the plugin changed (add, remove, ' +
  'rename, fix or change behaviour).';

const MODIFICATION_WORDS = /\b(add|remove|delete|change|modify|rename|fix|make|create|implement|replace|update)\b/i;

/** The simulated provider's stand-in for the intent model: a keyword rule, labelled as simulated by the provider. */
export function simulatedIntent(message: string): ChatIntent {
  return MODIFICATION_WORDS.test(message) ? 'modification' : 'info';
}

/** Structured output for models that accept a JSON schema; the answer is parsed leniently either way. */
export const INTENT_SCHEMA = {
  name: 'chat_intent',
  schema: {
    type: 'object',
    properties: { type: { type: 'string', enum: [...CHAT_INTENTS] } },
    required: ['type'],
    additionalProperties: false,
  },
};

/**
 * Reads the intent model's answer, however it came: a JSON `"type"` field (whole, fenced or
 * inside prose) wins; else the first of the words "info" or "modification" in the prose; else
 * (prose without either word, an empty answer, a refusal) `info`, so the question gets answered.
 */
export function parseIntent(text: string): ChatIntent {
  const match = text.match(/"type"\s*:\s*"(info|modification)"/i) ?? text.match(/\b(info|modification)\b/i);
  return match?.[1].toLowerCase() === 'modification' ? 'modification' : 'info';
}
