/** The bound on request bodies held in memory at once (--max-buffered-mb): the sum counts, not each body alone (issue 29, 16). */
import {expect} from 'chai'

import {ByteBudget} from '../../src/http/byte-budget.js'

describe('ByteBudget', () => {
  it('refuses a body that fits alone but not beside those already held, and takes it once they are given back', () => {
    const budget = new ByteBudget(100)
    expect(budget.take(60)).to.equal(true)
    expect(budget.take(50), '60 + 50 > 100').to.equal(false)
    expect(budget.inUse, 'a refusal takes nothing').to.equal(60)
    expect(budget.take(40)).to.equal(true)
    expect(budget.take(1), 'exactly full').to.equal(false)
    budget.give(60)
    expect(budget.take(50)).to.equal(true)
    expect(budget.inUse).to.equal(90)
  })
})
