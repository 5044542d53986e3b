// Bounded polling for tests: wait for a condition instead of sleeping a guessed amount.
// Fails with the condition's last error, so a timeout says what was still wrong.

/** Resolves with the first truthy value of `check` (or the first call that doesn't throw); rejects after timeoutMs. */
export function waitFor<T>(check: () => T, timeoutMs = 5_000, intervalMs = 10): Promise<NonNullable<T>> {
  return poll('waitFor', async () => check(), timeoutMs, intervalMs);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Like waitFor, for checks that are themselves asynchronous (an HTTP request, a file read). */
export function waitForAsync<T>(check: () => Promise<T>, timeoutMs = 5_000, intervalMs = 25): Promise<NonNullable<T>> {
  return poll('waitForAsync', check, timeoutMs, intervalMs);
}

async function poll<T>(
  name: string,
  check: () => Promise<T>,
  timeoutMs: number,
  intervalMs: number,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value as NonNullable<T>;
      lastError = undefined;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const detail = lastError instanceof Error ? `: ${lastError.message}` : '';
      throw new Error(`${name}: condition not met within ${timeoutMs} ms${detail}`, { cause: lastError });
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
