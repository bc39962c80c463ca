/**
 * Deepest nesting a JSON body may have. class-transformer and class-validator recurse once per
 * level and overflow the stack near 2,000; no route's body needs more than a handful.
 */
export const MAX_BODY_DEPTH = 32;

/**
 * Most values (array elements and object properties, at any depth) a JSON body may hold.
 * Validation costs tens of microseconds per value on the event loop (200,000 array elements
 * took 6 s, 70,000 unknown properties 17 s); the largest legitimate bodies (256 embedding
 * inputs, 500 chat messages of three fields) hold about 2,000.
 */
export const MAX_BODY_VALUES = 5_000;

/** What is wrong with the shape of a parsed body, or undefined; walks without recursion. */
export function bodyShapeProblem(value: unknown, limits = { maxDepth: MAX_BODY_DEPTH, maxValues: MAX_BODY_VALUES }): string | undefined {
  const stack: Array<[unknown, number]> = [[value, 1]];
  let values = 0;
  while (stack.length > 0) {
    const [node, depth] = stack.pop()!;
    if (node === null || typeof node !== 'object') continue;
    if (depth > limits.maxDepth) return `request body is nested more than ${limits.maxDepth} levels deep`;
    const children = Array.isArray(node) ? node : Object.values(node);
    values += children.length;
    if (values > limits.maxValues) return `request body holds more than ${limits.maxValues} values (array elements and properties)`;
    for (const child of children) {
      if (child !== null && typeof child === 'object') stack.push([child, depth + 1]);
    }
  }
  return undefined;
}
