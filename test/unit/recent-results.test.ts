/** The results kept in memory for their download right after: bounded in bytes, oldest out first, forgotten on request. */
import {expect} from 'chai'

import {RecentResults} from '../../src/tasks/recent-results.js'

describe('RecentResults', () => {
  const bytes = (n: number): Buffer => Buffer.alloc(n, 1)

  it('keeps results up to its byte bound, letting the oldest go first', () => {
    const recent = new RecentResults(10)
    recent.remember('a', [bytes(4)])
    recent.remember('b', [bytes(4)])
    recent.remember('c', [bytes(4)])
    expect(recent.get('a', 0)).to.equal(undefined)
    expect(recent.get('b', 0)?.length).to.equal(4)
    expect(recent.get('c', 0)?.length).to.equal(4)
    expect(recent.size).to.equal(8)
  })

  it('never keeps a result larger than the whole bound, and keeps the others', () => {
    const recent = new RecentResults(10)
    recent.remember('small', [bytes(3)])
    recent.remember('huge', [bytes(11)])
    expect(recent.get('huge', 0)).to.equal(undefined)
    expect(recent.get('small', 0)?.length).to.equal(3)
    expect(recent.size).to.equal(3)
  })

  it('forgets a result when asked (a deleted or expired task), and counts it out', () => {
    const recent = new RecentResults(10)
    recent.remember('a', [bytes(6)])
    recent.forget('a')
    recent.forget('never-there')
    expect(recent.get('a', 0)).to.equal(undefined)
    expect(recent.size).to.equal(0)
    recent.remember('b', [bytes(10)])
    expect(recent.get('b', 0)?.length).to.equal(10)
  })

  it('keeps every output of a task, counted together against the bound', () => {
    const recent = new RecentResults(10)
    recent.remember('several', [bytes(2), bytes(3), bytes(4)])
    expect([0, 1, 2, 3].map((index) => recent.get('several', index)?.length)).to.deep.equal([2, 3, 4, undefined])
    expect(recent.size).to.equal(9)
    recent.remember('next', [bytes(2)])
    expect(recent.get('several', 1)).to.equal(undefined)
    expect(recent.size).to.equal(2)
  })
})
