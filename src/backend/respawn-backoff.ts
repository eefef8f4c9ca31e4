/**
 * When to fork the replacement of a dead worker. A worker that dies soon
 * after the previous death is part of a crash loop (a poison input, a port it
 * cannot listen on, a broken install): each such death doubles the wait
 * before the next fork, up to a ceiling, so a loop cannot spin the CPU. A
 * death after a quiet spell is an accident, replaced at once.
 */
export interface BackoffPolicy {
  /** Deaths further apart than this start over at no delay. */
  stableAfterMs: number
  firstDelayMs: number
  maxDelayMs: number
}

export class RespawnBackoff {
  private delayMs = 0
  private lastDeathAt = Number.NEGATIVE_INFINITY

  constructor(private readonly policy: BackoffPolicy) {}

  /** Records a death at `now`; returns how long to wait before forking its replacement. */
  died(now: number): number {
    const {stableAfterMs, firstDelayMs, maxDelayMs} = this.policy
    this.delayMs = now - this.lastDeathAt < stableAfterMs ? Math.min(maxDelayMs, Math.max(firstDelayMs, this.delayMs * 2)) : 0
    this.lastDeathAt = now
    return this.delayMs
  }

  /** The back-off in force at `now`: the last death's delay, until a quiet spell ends the loop. */
  delayAt(now: number): number {
    return now - this.lastDeathAt < this.policy.stableAfterMs ? this.delayMs : 0
  }
}
