/**
 * The results of the tasks that ended last, kept in memory up to a byte
 * bound: a client that downloads its result right after the task ended (the
 * CLI, the page, `upload?wait` then `GET /result`) is answered without
 * opening a file (docs/performance.md, issue 19). The oldest go first; a
 * task that is deleted or expires leaves at once.
 */
export class RecentResults {
  /** A task's images, in output order. */
  private readonly results = new Map<string, readonly Buffer[]>()
  private bytes = 0

  constructor(private readonly maxBytes: number) {}

  remember(id: string, images: readonly Buffer[]): void {
    const size = total(images)
    if (size > this.maxBytes) return
    this.forget(id)
    this.results.set(id, images)
    this.bytes += size
    for (const [oldest, kept] of this.results) {
      if (this.bytes <= this.maxBytes) break
      this.results.delete(oldest)
      this.bytes -= total(kept)
    }
  }

  /** Output `index` of the task. */
  get(id: string, index: number): Buffer | undefined {
    return this.results.get(id)?.[index]
  }

  forget(id: string): void {
    const kept = this.results.get(id)
    if (!kept) return
    this.results.delete(id)
    this.bytes -= total(kept)
  }

  get size(): number {
    return this.bytes
  }
}

const total = (images: readonly Buffer[]): number => images.reduce((sum, image) => sum + image.length, 0)
