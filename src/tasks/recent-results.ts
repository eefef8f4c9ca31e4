/**
 * The results of the tasks that ended last, kept in memory up to a byte
 * bound: a client that downloads its result right after the task ended (the
 * CLI, the page, `upload?wait` then `GET /result`) is answered without
 * opening a file (docs/performance.md, issue 19). The oldest go first; a
 * task that is deleted or expires leaves at once.
 */
export class RecentResults {
  private readonly results = new Map<string, Buffer>()
  private bytes = 0

  constructor(private readonly maxBytes: number) {}

  remember(id: string, data: Buffer): void {
    if (data.length > this.maxBytes) return
    this.forget(id)
    this.results.set(id, data)
    this.bytes += data.length
    for (const [oldest, kept] of this.results) {
      if (this.bytes <= this.maxBytes) break
      this.results.delete(oldest)
      this.bytes -= kept.length
    }
  }

  get(id: string): Buffer | undefined {
    return this.results.get(id)
  }

  forget(id: string): void {
    const kept = this.results.get(id)
    if (!kept) return
    this.results.delete(id)
    this.bytes -= kept.length
  }

  get size(): number {
    return this.bytes
  }
}
