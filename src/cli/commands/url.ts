import {Args, Flags} from '@oclif/core'

import {signImageUrl} from '../../client/imgscale.js'
import {resolveServerUrl} from '../../client/server-url.js'
import {ClientCommand} from '../client-command.js'
import {serverFlags} from '../flags.js'
import {optionsFrom, resizeFlags} from '../resize-flags.js'

const {output: _output, concurrency: _concurrency, json: _json, ...optionFlags} = resizeFlags

export default class Url extends ClientCommand {
  static override summary = 'Print the signed GET /img URL of an image, for <img src>, a browser cache or a CDN.'
  static override description = `SOURCE is a path under the server's --source-dir, or an http(s) URL under
one of its --source-origin. The options are submit's; with no size the image
keeps its own. The URL is signed with --url-key (the server's), or is
"unsafe" for a server without one. Nothing is sent to the server.`
  static override examples = [
    '<%= config.bin %> url photos/cat.jpg --width 320 --format webp',
    '<%= config.bin %> url photos/cat.jpg 0.5 --url-key "$IMGSCALE_URL_KEY" --url https://img.example.com',
    '<%= config.bin %> url https://cdn.example.com/images/cat.jpg --width 640 --format auto',
  ]
  static override args = {
    source: Args.string({description: 'a path under the server\'s --source-dir, or an http(s) URL', required: true}),
    scale: Args.string({description: 'scale factor (instead of --width/--height)'}),
  }
  static override flags = {
    url: serverFlags.url,
    ip: serverFlags.ip,
    port: serverFlags.port,
    ...optionFlags,
    'url-key': Flags.string({env: 'IMGSCALE_URL_KEY', helpValue: '<key>', description: 'the key the server verifies /img URLs with (one of its --url-key; default: $IMGSCALE_URL_KEY)'}),
  }

  async run(): Promise<void> {
    const {args, flags} = await this.parse(Url)
    const server = resolveServerUrl(flags).replace(/\/+$/, '')
    this.log(server + signImageUrl(args.source, {...optionsFrom(flags), scale: args.scale}, flags['url-key'] || undefined))
  }
}
