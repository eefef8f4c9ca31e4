/**
 * The repository stands alone (issue 27): a clone with nothing beside it has
 * everything its tests, benches and docs need. Nothing outside docs/ may name
 * the folder that once sat beside the repository, and the photos the tests
 * use are the repository's own, byte for byte as ATTRIBUTION.md lists them.
 */
import {execFileSync} from 'node:child_process'
import {createHash} from 'node:crypto'
import {existsSync, readdirSync, readFileSync} from 'node:fs'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

import {expect} from 'chai'

import {PHOTOS} from '../helpers/images.js'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')
// Spelled in two pieces so that this file does not name it.
const OUTSIDE = ['..', 'shared'].join('/')

/** The tracked files (git's list), or every file but the ignored folders in a copy without .git. */
function repositoryFiles(): string[] {
  if (existsSync(path.join(ROOT, '.git'))) {
    return execFileSync('git', ['ls-files', '-z'], {cwd: ROOT, encoding: 'utf8'}).split('\0').filter(Boolean)
  }
  const skipped = new Set(['node_modules', 'dist', '.stryker-tmp', 'scratch', 'tmp'])
  const walk = (dir: string): string[] =>
    readdirSync(path.join(ROOT, dir), {withFileTypes: true}).flatMap((entry) => {
      const relative = path.join(dir, entry.name)
      if (entry.isDirectory()) return skipped.has(entry.name) ? [] : walk(relative)
      return entry.isFile() ? [relative] : []
    })
  return walk('')
}

describe('the repository stands alone', () => {
  it(`no file outside docs/ names ${OUTSIDE}`, () => {
    const files = repositoryFiles().filter((file) => !file.startsWith('docs/'))
    expect(files.length, 'the file list').to.be.greaterThan(100)
    const naming = files.filter((file) => readFileSync(path.join(ROOT, file), 'latin1').includes(OUTSIDE))
    expect(naming).to.deep.equal([])
  })

  it('the photos are in test/fixtures/photos, each as ATTRIBUTION.md lists it', () => {
    expect(path.relative(ROOT, PHOTOS)).to.equal(path.join('test', 'fixtures', 'photos'))
    const attribution = readFileSync(path.join(PHOTOS, 'ATTRIBUTION.md'), 'utf8')
    // A row: | `name` | format | pixels | bytes | sha256 (first 12) | ...
    const rows = [...attribution.matchAll(/^\| `([^`]+)` \|[^|]*\|[^|]*\| ([\d,]+) \| ([0-9a-f]{12}) \|/gm)]
    const listed = rows.map(([, name]) => name).sort()
    const present = readdirSync(PHOTOS).filter((name) => name !== 'ATTRIBUTION.md').sort()
    expect(listed).to.deep.equal(present)
    for (const [, name, bytes, sha] of rows) {
      const data = readFileSync(path.join(PHOTOS, name))
      expect(data.length, name).to.equal(Number(bytes.replace(/,/g, '')))
      expect(createHash('sha256').update(data).digest('hex').slice(0, 12), name).to.equal(sha)
    }
  })
})
