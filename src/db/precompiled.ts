/**
 * Queries built and compiled once, then run with new values. Kysely rebuilds and recompiles a
 * query from its builder chain on every call, which on the authenticated path's first use of a
 * token cost more than running the indexed query itself (docs/benchmarks.md).
 *
 * `build` gets a unique placeholder string for each named value; the compiled SQL keeps its
 * parameter slots, and each call fills the placeholders' slots with the given values (other
 * parameters, constants of the query, stay as compiled). Values therefore travel as bound
 * parameters exactly as with the builder: nothing is ever spliced into SQL text.
 */
import { randomUUID } from 'node:crypto';
import { CompiledQuery, type Compilable, type Kysely } from 'kysely';

type Slot<K extends string> = { name: K } | { value: unknown };

export function precompile<Row, K extends string, DB>(
  db: Kysely<DB>,
  names: readonly K[],
  build: (placeholders: Record<K, string>) => Compilable<Row>,
): (values: Record<K, unknown>) => Promise<Row[]> {
  const nonce = randomUUID();
  const placeholders = Object.fromEntries(names.map((name) => [name, `precompiled:${nonce}:${name}`])) as Record<
    K,
    string
  >;
  const compiled = build(placeholders).compile();
  const byPlaceholder = new Map<unknown, K>(names.map((name) => [placeholders[name], name]));
  const slots: Slot<K>[] = compiled.parameters.map((value) => {
    const name = byPlaceholder.get(value);
    return name === undefined ? { value } : { name };
  });
  for (const name of names) {
    if (!slots.some((slot) => 'name' in slot && slot.name === name))
      throw new Error(`precompile: "${name}" is not a parameter of the query`);
  }
  return async (values) => {
    const parameters = slots.map((slot) => ('name' in slot ? values[slot.name] : slot.value));
    const result = await db.executeQuery<Row>(CompiledQuery.raw(compiled.sql, parameters));
    return result.rows;
  };
}
