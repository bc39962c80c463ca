import { LabelLimiter } from './label-limiter';

describe(LabelLimiter.name, () => {
  it('passes the first values through and folds the rest into "other"', () => {
    const limiter = new LabelLimiter(2);
    expect(['a', 'b', 'a', 'c', 'b', ''].map((value) => limiter.label(value))).toEqual(['a', 'b', 'a', 'other', 'b', 'other']);
  });
});
