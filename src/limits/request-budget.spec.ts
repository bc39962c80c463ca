import { RequestBudget } from './request-budget';
import type { Reservation } from './usage-limits.service';

const part = (id: string): Reservation => ({ id, userId: 'u', tokens: 100, enforced: true, maxCompletionTokens: 50, plan: { tier: 'FREE', limits: {} } });

describe(RequestBudget.name, () => {
  it('gives each call the first unused part meant for its operation, once', () => {
    const budget = new RequestBudget(
      [
        { operations: ['chat_intent'], promptTokens: 10, maxCompletionTokens: 20, reserveCompletionTokens: 20 },
        { operations: ['chat_info', 'chat_modification'], promptTokens: 30, maxCompletionTokens: 4096, reserveCompletionTokens: 1024 },
      ],
      [part('r#1'), part('r#2')],
    );
    expect(budget.take('chat_modification')?.id).toBe('r#2');
    expect(budget.take('chat_info')).toBeUndefined();
    expect(budget.take('chat_intent')?.id).toBe('r#1');
    expect(budget.drain()).toEqual([]);
  });

  it('holds a part given back (a call that was not billed) for the next call, and drains what is left', () => {
    const budget = new RequestBudget([{ operations: ['code_generation'], promptTokens: 10, maxCompletionTokens: 20, reserveCompletionTokens: 20 }], [part('r#1')]);
    const taken = budget.take('code_generation')!;
    expect(budget.giveBack({ ...taken, maxCompletionTokens: 5 })).toBe(true);
    expect(budget.giveBack(part('other'))).toBe(false);
    expect(budget.take('code_generation')).toEqual(part('r#1'));
    expect(budget.giveBack(part('r#1'))).toBe(true);
    expect(budget.drain().map((reservation) => reservation.id)).toEqual(['r#1']);
  });
});
