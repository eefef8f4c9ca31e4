/**
 * A lean HTTP/1.1 client for driving the server: node:http with keep-alive and
 * a multipart body built once per image. fetch + FormData cost the benchmark
 * process 7-10 ms of CPU per task on this machine, CPU the server under test
 * then lacks; this costs a fraction of that. The requests are the same ones
 * curl sends.
 */
import http from 'node:http'

const agent = new http.Agent({keepAlive: true, maxSockets: 256})

/**
 * Closes the idle keep-alive connections. Called after this process has been
 * busy elsewhere for seconds: a connection idle for about the server's
 * keep-alive timeout may be closed by the server just as a request goes out
 * on it ("socket hang up").
 */
export function closeIdleConnections(): void {
  agent.destroy()
}

export interface Answer {
  status: number
  headers: http.IncomingHttpHeaders
  body: Buffer
}

export function request(url: string, options: {method?: string; headers?: http.OutgoingHttpHeaders; body?: Buffer[]} = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, {method: options.method ?? 'GET', headers: options.headers, agent}, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('end', () => resolve({status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks)}))
      res.on('error', reject)
    })
    req.on('error', reject)
    for (const part of options.body ?? []) req.write(part)
    req.end()
  })
}

/** The parts of a `multipart/form-data` upload of `image` with `scale_factor`, as curl -F would send it. */
export function multipartUpload(image: Buffer, filename: string, scale: number): {headers: http.OutgoingHttpHeaders; body: Buffer[]} {
  return multipartForm(image, filename, {scale_factor: String(scale)})
}

/** The parts of a `multipart/form-data` upload of `image` with these text fields, as curl -F would send it. */
export function multipartForm(image: Buffer, filename: string, fields: Record<string, string>): {headers: http.OutgoingHttpHeaders; body: Buffer[]} {
  const boundary = '----imgscale-bench-boundary'
  const head = Buffer.from(
    Object.entries(fields)
      .map(([name, value]) => `--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`)
      .join('') + `--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="${filename}"\r\nContent-Type: application/octet-stream\r\n\r\n`,
  )
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`)
  return {
    headers: {'Content-Type': `multipart/form-data; boundary=${boundary}`, 'Content-Length': head.length + image.length + tail.length},
    body: [head, image, tail],
  }
}
