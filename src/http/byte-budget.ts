/**
 * A bound on bytes held at once (request bodies server A keeps in memory):
 * what is taken must be given back, and nothing is taken past the limit.
 */
export class ByteBudget {
  private used = 0

  constructor(readonly limit: number) {}

  get inUse(): number {
    return this.used
  }

  /** Takes `bytes` if they fit; false (and nothing taken) if they do not. */
  take(bytes: number): boolean {
    if (this.used + bytes > this.limit) return false
    this.used += bytes
    return true
  }

  give(bytes: number): void {
    this.used -= bytes
  }
}
