import {expect} from 'chai'

import {RespawnBackoff} from '../../src/backend/respawn-backoff.js'

describe('RespawnBackoff: when a dead worker is replaced', () => {
  const policy = {stableAfterMs: 10_000, firstDelayMs: 100, maxDelayMs: 1_000}

  it('replaces a first death at once, and reports no back-off', () => {
    const backoff = new RespawnBackoff(policy)
    expect(backoff.died(50_000)).to.equal(0)
    expect(backoff.delayAt(50_000)).to.equal(0)
  })

  it('doubles the wait for each death within the stable time, up to the ceiling', () => {
    const backoff = new RespawnBackoff(policy)
    const delays = [0, 1, 2, 3, 4, 5, 6].map((i) => backoff.died(1_000 + i * 500))
    expect(delays).to.deep.equal([0, 100, 200, 400, 800, 1_000, 1_000])
    expect(backoff.delayAt(4_000)).to.equal(1_000)
  })

  it('a quiet spell ends the loop: the back-off reads 0, and the next death is replaced at once', () => {
    const backoff = new RespawnBackoff(policy)
    backoff.died(0)
    backoff.died(1_000)
    expect(backoff.delayAt(1_000 + 9_999)).to.equal(100)
    expect(backoff.delayAt(1_000 + 10_000)).to.equal(0)
    expect(backoff.died(1_000 + 10_000)).to.equal(0)
  })
})
