/**
 * Keeps a label's cardinality bounded: the first `max` distinct values pass through,
 * later ones are reported as "other" (so one misbehaving provider cannot explode the series).
 */
export class LabelLimiter {
  private readonly seen = new Set<string>();

  constructor(private readonly max: number) {}

  label(value: string): string {
    const text = value.length > 0 ? value.slice(0, 120) : 'none';
    if (this.seen.has(text)) return text;
    if (this.seen.size >= this.max) return 'other';
    this.seen.add(text);
    return text;
  }
}
