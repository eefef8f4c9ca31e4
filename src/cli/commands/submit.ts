import {mkdir} from 'node:fs/promises'

import {Args, Flags, ux, type Interfaces} from '@oclif/core'

import {ImgscaleClientError} from '../../client/client-error.js'
import {SHORT_WAIT_SECONDS, type Imgscale, type ResizeRequest} from '../../client/imgscale.js'
import {expandInputs, isFolder, runBatch, saveOutputs} from '../../client/batch.js'
import {itemLine, progressOn} from '../batch-report.js'
import {ClientCommand} from '../client-command.js'
import {serverFlags} from '../flags.js'
import {resizeFlags, resizeRequestFrom, TOO_FEW_ARGUMENTS} from '../resize-flags.js'

type SubmitFlags = Interfaces.InferredFlags<typeof Submit.flags>


export default class Submit extends ClientCommand {
  static override summary = 'Upload images to be scaled; for one file, prints only its task id.'
  static override description = `One file: prints only the task id on stdout, so \`id=$(imgscale submit a.jpg 0.5)\`
works. With --wait it waits until the task ends (progress on stderr when it is
a terminal) and exits 1 if the task failed; -o also saves the result (and
implies --wait): into that folder, under the input's name, if -o ends with /
or is a directory.

Several files, or a directory (its images): a batch. Up to --concurrency are
in flight; stdout gets one line per file (file, task id, status, saved path or
error, tab-separated; --json: one JSON object per line); stderr shows a
progress bar on a terminal, plain lines otherwise. -o names the folder the
results go to. Exits 1 if any file failed, after finishing the others.

Instead of a scale factor, --width and/or --height give a box (then every
argument is a file); --fit says how the image goes into it (inside: within
it, contain: padded to it, cover: cropped to it, fill: stretched to it,
outside: covering it), --position what cover keeps (attention: smart crop).
--crop, --rotate, --flip and --flop apply before the resize; --grayscale,
--blur and --sharpen after it. --preset starts from the server's named options.

A FILE that is an http(s) URL is fetched by the server (image_url).
Several --output give several images from one upload, decoded once: -o DIR/
gets <name>-<n>.<ext> for each.`
  static override examples = [
    '<%= config.bin %> submit photo.jpg 0.5',
    '<%= config.bin %> submit photo.jpg 0.25 --wait -o small.jpg',
    '<%= config.bin %> submit photo.png 2 --format webp --url http://[::1]:5454',
    '<%= config.bin %> submit a.jpg b.png c.webp 0.5 --wait -o outdir/',
    '<%= config.bin %> submit holiday/ 0.25 -o thumbs/ --json',
    '<%= config.bin %> submit photo.jpg --width 800 --height 800 --fit cover --position attention -o square.jpg',
    '<%= config.bin %> submit photo.jpg --width 1200 --format auto --quality 70 --callback https://example.com/hooks/imgscale',
    '<%= config.bin %> submit photo.jpg --output width=320,format=webp --output width=1280 -o srcset/',
    '<%= config.bin %> submit https://example.com/photo.jpg 0.5 --grayscale --rotate 90 --wait -o grey.jpg',
    '<%= config.bin %> submit photo.jpg --preset thumb --wait -o thumb.webp',
  ]
  // Any number of files, then the scale: checked in run().
  static override strict = false
  static override args = {
    file: Args.string({description: 'image(s) to upload (JPEG, PNG, WebP, AVIF, GIF or TIFF), a directory of them, or an http(s) URL for the server to fetch', required: true}),
    // Not `required`: with any number of files before it, run() checks it and says what is missing in one sentence.
    scale: Args.string({description: 'scale factor, e.g. 0.5 (0 < scale <= the server maximum, 10 by default); always last; left out with --width/--height or --output'}),
  }
  static override flags = {
    ...serverFlags,
    ...resizeFlags,
    callback: Flags.string({helpValue: '<url>', description: 'http(s) URL the server POSTs the status document to when the task ends'}),
    wait: Flags.boolean({char: 'W', description: 'wait until the task is done or failed'}),
    out: Flags.string({
      char: 'o',
      description: 'save the result here (implies --wait); for a batch or several --output, the folder for all results',
      helpValue: '<path>',
    }),
    timeout: Flags.integer({min: 1, default: 300, description: 'seconds --wait waits for one task before giving up'}),
  }

  async run(): Promise<void> {
    const {argv, flags} = await this.parse(Submit)
    const request = resizeRequestFrom(argv as string[], flags)
    if (!request) this.fail(TOO_FEW_ARGUMENTS('submit'))
    const inputs = request.files
    const resize: ResizeRequest = {...request.resize, callbackUrl: flags.callback}
    const client = this.client(flags)
    const files = await expandInputs(inputs)
    const batch = files.length !== 1 || files[0] !== inputs[0] || flags.json
    if (batch) return this.runBatch(client, files, resize, flags)
    await this.runOne(client, files[0]!, resize, flags)
  }

  private async runBatch(client: Imgscale, files: string[], resize: ResizeRequest, flags: SubmitFlags): Promise<void> {
    if (files.length === 0) this.fail('No image files to upload.')
    const progress = progressOn(process.stderr, files.length)
    const items = await runBatch(
      client,
      files,
      {resize, wait: flags.wait, outDir: flags.out, concurrency: flags.concurrency, timeoutMs: flags.timeout * 1000},
      (item) => progress.advance(item, itemLine(item, flags.json)),
    ).finally(() => progress.stop())
    const failed = items.filter((item) => item.status === 'failed').length
    if (failed > 0) this.fail(`${failed} of ${files.length} files failed.`)
  }

  private async runOne(client: Imgscale, file: string, resize: ResizeRequest, flags: SubmitFlags): Promise<void> {
    const waiting = flags.wait || flags.out !== undefined
    const uploaded = await client.submit(file, {...resize, ...(waiting ? {wait: SHORT_WAIT_SECONDS} : {})})
    const id = uploaded.taskId
    this.log(id)
    if (!waiting) return

    const progress = process.stderr.isTTY && !uploaded.final
    if (progress) ux.action.start(`Scaling ${file}`, uploaded.status, {stdout: false})
    const final =
      uploaded.final ??
      (await client.wait(id, {
        timeoutMs: flags.timeout * 1000,
        onUpdate(status) {
          if (progress) ux.action.status = status.status
        },
      }))
    if (progress) ux.action.stop(final.status)
    if (final.status !== 'done') {
      throw new ImgscaleClientError(`Task ${id} ${final.status}: ${final.error!.message} (${final.error!.code})`, 'task_failed')
    }
    if (!flags.out) return
    if (final.outputs.length > 1 || (await isFolder(flags.out))) {
      await mkdir(flags.out, {recursive: true})
      await saveOutputs(client, final, flags.out, file)
    } else {
      await client.saveResult(id, flags.out)
    }
  }
}
