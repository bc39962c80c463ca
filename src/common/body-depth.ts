/**
 * Deepest nesting a JSON body may have. class-transformer and class-validator recurse once per
 * level and overflow the stack near 2,000; no route's body needs more than a handful.
 */
export const MAX_BODY_DEPTH = 32;

/** True when `value` nests arrays or objects more than `maxDepth` levels; walks without recursion. */
export function nestsDeeperThan(value: unknown, maxDepth: number): boolean {
  const stack: Array<[unknown, number]> = [[value, 1]];
  while (stack.length > 0) {
    const [node, depth] = stack.pop()!;
    if (node === null || typeof node !== 'object') continue;
    if (depth > maxDepth) return true;
    for (const child of Array.isArray(node) ? node : Object.values(node)) {
      if (child !== null && typeof child === 'object') stack.push([child, depth + 1]);
    }
  }
  return false;
}
