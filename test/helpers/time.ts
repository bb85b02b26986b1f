// Waiting in tests: the one sleep, and the one poll for a condition (a hang guard with a message,
// never an assertion of speed).

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Waits until `pred()` holds, checking every 20 ms; rejects naming `what` after timeoutMs. */
export async function eventually(pred: () => boolean | Promise<boolean>, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let i = 0; i < 100_000; i++) {
    if (await pred()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
  throw new Error(`gave up waiting for ${what}`);
}
