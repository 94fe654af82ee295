/**
 * Runs `fn` once per key and shares the result: concurrent callers of a key wait for the same
 * call, later callers get its result at once. A failure is forgotten, so the next caller tries
 * again (a transient error must not poison the key for the life of the process).
 */
export function oncePerKey<T>(fn: (key: string) => Promise<T>): (key: string) => Promise<T> {
  const results = new Map<string, Promise<T>>();
  return (key) => {
    let result = results.get(key);
    if (!result) {
      result = (async () => fn(key))(); // a synchronous throw becomes a rejection too
      results.set(key, result);
      result.catch(() => results.delete(key));
    }
    return result;
  };
}
