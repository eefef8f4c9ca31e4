import {mkdir} from 'node:fs/promises'

import {Args, Flags} from '@oclif/core'

import {expandInputs, isFolder, resultPathIn, runResizeBatch} from '../../client/batch.js'
import {itemLine, progressOn} from '../batch-report.js'
import {ClientCommand} from '../client-command.js'
import {serverFlags} from '../flags.js'
import {resizeFlags, resizeRequestFrom, TOO_FEW_ARGUMENTS} from '../resize-flags.js'

export default class Resize extends ClientCommand {
  static override summary = 'Resize images in one request each (POST /resize): no task, the image straight back.'
  static override description = `One file: saves the image to -o (a file, "-" for stdout, or a folder: then
under the input's name) and prints where it went.

Several files, or a directory (its images): a batch. -o names the folder the
results go to; up to --concurrency are in flight; stdout gets one line per
file (file, -, status, saved path or error, tab-separated; --json: one JSON
object per line); stderr shows progress. Exits 1 if any file failed, after
finishing the others.

Takes submit's options. Nothing is kept on the server: for results to fetch
later, or a callback, use \`imgscale submit\`.`
  static override examples = [
    '<%= config.bin %> resize photo.jpg 0.5 -o small.jpg',
    '<%= config.bin %> resize photo.jpg --width 320 --format webp -o thumbs/',
    '<%= config.bin %> resize holiday/ 0.25 -o thumbs/ --json',
    '<%= config.bin %> resize photo.png 0.5 -o - > small.png',
    '<%= config.bin %> resize photo.jpg --width 640 --crop 100,50,800,600 --sharpen 1 -o detail.jpg',
  ]
  // Any number of files, then the scale: checked in run().
  static override strict = false
  static override args = {
    file: Args.string({description: 'image(s) to resize (JPEG, PNG, WebP, AVIF, GIF or TIFF), a directory of them, or an http(s) URL for the server to fetch', required: true}),
    scale: Args.string({description: 'scale factor, e.g. 0.5; always last; left out with --width/--height'}),
  }
  static override flags = {
    ...serverFlags,
    ...resizeFlags,
    out: Flags.string({char: 'o', required: true, description: 'where the result goes: a file, "-" for stdout, or a folder (for a batch, always a folder)', helpValue: '<path>'}),
  }

  async run(): Promise<void> {
    const {argv, flags} = await this.parse(Resize)
    const request = resizeRequestFrom(argv as string[], flags)
    if (!request) this.fail(TOO_FEW_ARGUMENTS('resize'))
    const client = this.client(flags)
    const files = await expandInputs(request.files)
    const out = flags.out

    if (files.length !== 1 || files[0] !== request.files[0] || flags.json) {
      if (files.length === 0) this.fail('No image files to resize.')
      if (out === '-') this.fail('A batch needs a folder for -o, not "-".')
      const progress = progressOn(process.stderr, files.length)
      const items = await runResizeBatch(client, files, {resize: request.resize, outDir: out, concurrency: flags.concurrency}, (item) =>
        progress.advance(item, itemLine(item, flags.json)),
      ).finally(() => progress.stop())
      const failed = items.filter((item) => item.status === 'failed').length
      if (failed > 0) this.fail(`${failed} of ${files.length} files failed.`)
      return
    }

    const file = files[0]!
    const folder = out !== '-' && (await isFolder(out))
    if (folder) await mkdir(out, {recursive: true})
    const saved = await client.resizeTo(file, request.resize, folder ? (extension) => resultPathIn(out, file, extension ?? 'bin') : out)
    if (saved !== '-') this.log(saved)
  }
}
