/**
 * The browser page, driven in Debian's Chromium by playwright-core: upload a
 * real photo and see the result, and see a failure's message.
 */
import {readFileSync, writeFileSync} from 'node:fs'
import {fileURLToPath} from 'node:url'

import {expect} from 'chai'
import {chromium, type Browser, type Page} from 'playwright-core'
import sharp from 'sharp'

import {submit} from '../helpers/api.js'
import {photo, PHOTO, SLOW} from '../helpers/images.js'
import {until} from '../helpers/processes.js'
import {serveForSuite} from '../helpers/serve.js'

const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium'
const SCREENSHOT = fileURLToPath(new URL('../../docs/screenshot.jpg', import.meta.url))

function launch(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  })
}

describe('the browser page (GET /)', function () {
  const served = serveForSuite()
  let browser: Browser
  let page: Page
  let problems: string[]

  before(async () => {
    browser = await launch()
  })
  after(async () => {
    await browser?.close()
  })
  beforeEach(async () => {
    page = await browser.newPage({viewport: {width: 1100, height: 900}})
    problems = []
    page.on('console', (message) => {
      if (message.type() === 'error' || message.type() === 'warning') problems.push(`${message.type()}: ${message.text()}`)
    })
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`))
    // Everything the page loads must come from the server itself.
    page.on('request', (request) => {
      const url = request.url()
      if (!url.startsWith(served().url) && !url.startsWith('blob:') && !url.startsWith('data:')) problems.push(`outside request: ${url}`)
    })
    await page.goto(served().url)
  })
  afterEach(async () => {
    await page.close()
    expect(problems).to.deep.equal([])
  })

  it('uploads a photo, shows the live status, then the result beside the original with both sizes', async () => {
    await page.setInputFiles('#image', PHOTO.jpeg.file)
    await page.fill('#scale', '0.5')
    await page.click('#submit')
    await page.waitForSelector('#compare:not([hidden])', {timeout: 30_000})

    expect(await page.textContent('#original-size')).to.match(/^600×450 px, .* KB, jpeg$/)
    expect(await page.textContent('#result-size')).to.match(/^300×225 px, .* KB, jpeg$/)
    expect(await page.textContent('#status')).to.contain('Done: 600×450 → 300×225')
    // The result image really loaded, at its real size, and the download link points at it.
    await page.waitForFunction('document.getElementById("result").complete')
    expect(await page.evaluate('[document.getElementById("result").naturalWidth, document.getElementById("result").naturalHeight]')).to.deep.equal([300, 225])
    expect(await page.getAttribute('#download', 'href')).to.match(/^blob:/)
    expect(await page.getAttribute('#download', 'download')).to.match(/^[0-9A-Z]{26}\.jpg$/)
    if (process.env['UPDATE_SCREENSHOT']) writeFileSync(SCREENSHOT, await page.screenshot({fullPage: true, type: 'jpeg', quality: 80}))
  })

  it('takes an image dropped on the drop zone, and resizes it the same way', async () => {
    // A real drag from the desktop cannot be scripted; the same drop event, with a File in it, can.
    const base64 = readFileSync(PHOTO.jpeg.file).toString('base64')
    const dataTransfer = await page.evaluateHandle(`(() => {
      const bytes = Uint8Array.from(atob('${base64}'), (c) => c.charCodeAt(0))
      const transfer = new DataTransfer()
      transfer.items.add(new File([bytes], 'dropped.jpg', {type: 'image/jpeg'}))
      return transfer
    })()`)
    await page.dispatchEvent('#drop', 'dragover', {dataTransfer})
    expect(await page.getAttribute('#drop', 'class')).to.contain('over')
    await page.dispatchEvent('#drop', 'drop', {dataTransfer})
    expect(await page.getAttribute('#drop', 'class')).not.to.contain('over')
    expect(await page.textContent('#chosen')).to.match(/^dropped\.jpg \(\d+\.\d KB\)$/)
    await page.fill('#scale', '0.25')
    await page.click('#submit')
    await page.waitForSelector('#compare:not([hidden])', {timeout: 30_000})
    expect(await page.textContent('#result-size')).to.match(/^150×113 px, /)
  })

  it('a width and height with a fit replace the scale: cover gives exactly the box, quality is sent', async () => {
    await page.setInputFiles('#image', PHOTO.jpeg.file)
    await page.fill('#width', '200')
    await page.fill('#height', '200')
    await page.selectOption('#fit', 'cover')
    await page.fill('#quality', '40')
    await page.click('#submit')
    await page.waitForSelector('#compare:not([hidden])', {timeout: 30_000})
    expect(await page.textContent('#result-size')).to.match(/^200×200 px, .*, jpeg$/)
    await page.waitForFunction('document.getElementById("result").complete')
    expect(await page.evaluate('[document.getElementById("result").naturalWidth, document.getElementById("result").naturalHeight]')).to.deep.equal([200, 200])
    // Only a width: the height follows the aspect ratio.
    await page.fill('#height', '')
    await page.fill('#width', '150')
    await page.click('#submit')
    await until('the new result', async () => (await page.textContent('#result-size'))?.startsWith('150×113'), 30_000)
  })

  it('is served with a policy that allows nothing but this server', async () => {
    const response = await fetch(served().url)
    expect(response.headers.get('content-type')).to.equal('text/html; charset=utf-8')
    expect(response.headers.get('content-security-policy')).to.match(/^default-src 'self';/)
  })

  it('the slider and the number field move together, up to the server maximum', async () => {
    expect(await page.getAttribute('#scale-range', 'max')).to.equal('10')
    await page.fill('#scale', '2.5')
    expect(await page.inputValue('#scale-range')).to.equal('2.5')
    await page.locator('#scale-range').fill('0.25')
    expect(await page.inputValue('#scale')).to.equal('0.25')
  })

  for (const [button, name] of [['#submit', 'Resize'], ['#resize-now', 'Resize now']] as const) {
    it(`shows a failure plainly (${name}): a text file gets the server's message`, async () => {
      await page.setInputFiles('#image', {name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('this is not an image\n')})
      await page.click(button)
      await page.waitForSelector('#error:not([hidden])')
      expect(await page.textContent('#error')).to.match(/not an image we recognise.*\(unsupported_media_type\)/)
      expect(await page.isHidden('#compare')).to.equal(true)
      // Chromium logs every 4xx answer to fetch as a console error; that one is expected here, and only that one.
      expect(problems).to.have.length(1)
      expect(problems[0]).to.match(/status of 415/)
      problems = []
    })
  }

  it('rotate, flip and grayscale are sent: the result is turned and grey', async () => {
    await page.setInputFiles('#image', PHOTO.jpeg.file)
    await page.fill('#scale', '0.5')
    await page.selectOption('#rotate', '90')
    await page.check('#flip')
    await page.check('#grayscale')
    const downloaded = page.waitForResponse((response) => /\/result\/[0-9A-Z]{26}$/.test(response.url()))
    await page.click('#submit')
    await page.waitForSelector('#compare:not([hidden])', {timeout: 30_000})
    expect(await page.textContent('#result-size')).to.match(/^225×300 px, /)
    // The page reads the result as a blob; the same bytes, fetched again here.
    const image = Buffer.from(await (await fetch((await downloaded).url())).arrayBuffer())
    const {data, info} = await sharp(image).raw().toBuffer({resolveWithObject: true})
    expect(info.channels === 1 || data.every((value, i) => i % 3 !== 0 || (value === data[i + 1] && value === data[i + 2]))).to.equal(true)
    // The reference: the photo turned, then mirrored up-down, then halved, one step at a time (sharp alone would mirror first).
    const upright = await sharp(readFileSync(PHOTO.jpeg.file)).rotate(90).png().toBuffer()
    const turned = await sharp(await sharp(upright).flip().png().toBuffer()).resize(225, 300).greyscale().raw().toBuffer()
    let sum = 0
    for (let i = 0; i < turned.length; i++) sum += Math.abs(turned[i]! - data[i * info.channels]!)
    expect(sum / turned.length).to.be.below(10)
    for (const id of ['#flip', '#grayscale']) await page.uncheck(id)
    await page.selectOption('#rotate', '0')
  })

  it('"Resize now" gets the image straight back (POST /resize), with both sizes and a download named after the input', async () => {
    await page.setInputFiles('#image', PHOTO.png.file)
    await page.fill('#scale', '0.25')
    await page.selectOption('#format', 'webp')
    const answered = page.waitForResponse((response) => response.url().endsWith('/resize'))
    await page.click('#resize-now')
    expect((await answered).status()).to.equal(200)
    await page.waitForSelector('#compare:not([hidden])', {timeout: 30_000})
    expect(await page.textContent('#original-size')).to.match(/^576×384 px, .* KB, png$/)
    expect(await page.textContent('#result-size')).to.match(/^144×96 px, .* KB, webp$/)
    expect(await page.textContent('#status')).to.contain('Done: 576×384 → 144×96')
    await page.waitForFunction('document.getElementById("result").complete')
    expect(await page.evaluate('[document.getElementById("result").naturalWidth, document.getElementById("result").naturalHeight]')).to.deep.equal([144, 96])
    expect(await page.getAttribute('#download', 'download')).to.equal('embedgravitybird.webp')
  })

  it('is usable from the keyboard: the file chooser, the scale and the button are reached with Tab', async () => {
    const reached: string[] = []
    for (let i = 0; i < 18; i++) {
      await page.keyboard.press('Tab')
      reached.push(await page.evaluate<string>('document.activeElement?.id ?? ""'))
    }
    expect(reached).to.include.members(['image', 'scale-range', 'scale', 'width', 'height', 'fit', 'quality', 'rotate', 'flip', 'flop', 'grayscale', 'format', 'submit', 'resize-now'])
  })

  it('fits a phone-sized screen without sideways scrolling', async () => {
    await page.setViewportSize({width: 360, height: 740})
    expect(await page.evaluate<number>('document.documentElement.scrollWidth')).to.be.at.most(360)
  })
})

describe('the browser page with a busy server', function () {
  // One worker, one task at a time: the page's task waits its turn behind another.
  const served = serveForSuite(['-w', '1', '--inflight-per-worker', '1'])
  let browser: Browser
  before(async () => {
    browser = await launch()
  })
  after(async () => {
    await browser?.close()
  })

  it('sends the chosen output format, and updates the live status while it waits: queued, processing, then done', async () => {
    const page = await browser.newPage()
    try {
      await page.goto(served().url)
      // Every text the status line shows, in order.
      await page.evaluate(`(() => {
        window.seen = []
        new MutationObserver(() => window.seen.push(document.getElementById('status').textContent)).observe(document.getElementById('status'), {childList: true, characterData: true, subtree: true})
      })()`)
      await submit(served().url, SLOW)
      await page.setInputFiles('#image', photo('gain-map.jpg'))
      await page.fill('#scale', '1')
      await page.selectOption('#format', 'gif')
      await page.click('#submit')
      await page.waitForSelector('#compare:not([hidden])', {timeout: 60_000})

      expect(await page.textContent('#result-size')).to.match(/^3840×2160 px, .*, gif$/)
      const seen = (await page.evaluate('window.seen')) as string[]
      const at = (status: string): number => seen.findIndex((text) => new RegExp(`^Task [0-9A-Z]{26}: ${status}…$`).test(text))
      expect(at('queued'), seen.join(' | ')).to.be.at.least(0)
      expect(at('processing'), seen.join(' | ')).to.be.above(at('queued'))
      expect(seen.at(-1)).to.match(/^Done: 3840×2160 → 3840×2160/)
    } finally {
      await page.close()
    }
  })
})

describe('the browser page on a server with an API key', function () {
  const served = serveForSuite(['--api-key', 'page-key-123'])
  let browser: Browser
  before(async () => {
    browser = await launch()
  })
  after(async () => {
    await browser?.close()
  })

  it('asks for the key when the server answers 401, then works with it, the result image included', async () => {
    const page = await browser.newPage()
    try {
      await page.goto(served().url)
      expect(await page.isHidden('#key-row')).to.equal(true)
      await page.setInputFiles('#image', PHOTO.jpeg.file)
      await page.fill('#scale', '0.5')
      await page.click('#submit')
      await page.waitForSelector('#error:not([hidden])')
      expect(await page.textContent('#error')).to.match(/API key.*\(unauthorized\)/)
      expect(await page.isVisible('#key-row')).to.equal(true)
      expect(await page.evaluate('document.activeElement.id')).to.equal('key')

      await page.fill('#key', 'page-key-123')
      await page.click('#submit')
      await page.waitForSelector('#compare:not([hidden])', {timeout: 30_000})
      expect(await page.textContent('#result-size')).to.match(/^300×225 px/)
      await page.waitForFunction('document.getElementById("result").complete')
      expect(await page.evaluate('document.getElementById("result").naturalWidth')).to.equal(300)
      expect(await page.isHidden('#error')).to.equal(true)
    } finally {
      await page.close()
    }
  })
})
