/** Callers waiting for tasks to end (long-polling status requests), woken by id or all at once. */
export class EndWaiters {
  private readonly waiters = new Map<string, Set<() => void>>()

  /** Resolves when `wake(id)` is called or after `ms`, whichever is first. */
  wait(id: string, ms: number): Promise<void> {
    return this.watch(id, ms).ended
  }

  /**
   * Like `wait`, for a caller that must start listening before it reads the
   * task (so that an end in between is not missed) and may then not need to.
   */
  watch(id: string, ms: number): {ended: Promise<void>; cancel: () => void} {
    if (ms <= 0) return {ended: Promise.resolve(), cancel: () => {}}
    let wake = (): void => {}
    const ended = new Promise<void>((resolve) => {
      const waiters = this.waiters.get(id) ?? new Set()
      this.waiters.set(id, waiters)
      wake = (): void => {
        clearTimeout(timer)
        waiters.delete(wake)
        if (waiters.size === 0) this.waiters.delete(id)
        resolve()
      }
      const timer = setTimeout(wake, ms)
      waiters.add(wake)
    })
    return {ended, cancel: wake}
  }

  wake(id: string): void {
    for (const wake of [...(this.waiters.get(id) ?? [])]) wake()
  }

  /** Every waiter looks again: news of an end may have been missed (a lost subscription). */
  wakeAll(): void {
    for (const id of [...this.waiters.keys()]) this.wake(id)
  }
}
