/** Requests fetch cannot make: malformed multipart, chunked floods, uploads cut off midway. */
import net from 'node:net'

export interface RawResponse {
  status: number
  headers: Record<string, string>
  body: string
}

/** Sends raw bytes to server A and reads one response (the server may close early). */
export function rawRequest(baseUrl: string, bytes: Buffer | string, timeoutMs = 10_000): Promise<RawResponse> {
  const {hostname, port} = new URL(baseUrl)
  return new Promise((resolve, reject) => {
    const socket = net.connect({host: hostname.replace(/^\[|\]$/g, ''), port: Number(port)})
    let data = ''
    const timer = setTimeout(() => {
      socket.destroy()
      reject(new Error(`no response in ${timeoutMs} ms; got: ${data.slice(0, 200)}`))
    }, timeoutMs)
    socket.on('error', () => {}) // the server may reset us after answering
    socket.on('data', (chunk) => {
      data += chunk.toString('latin1')
      const parsed = parse(data)
      if (parsed) {
        clearTimeout(timer)
        socket.destroy()
        resolve(parsed)
      }
    })
    socket.on('close', () => {
      clearTimeout(timer)
      const parsed = parse(data)
      if (parsed) resolve(parsed)
      else reject(new Error(`connection closed without a response; got: ${data.slice(0, 200)}`))
    })
    socket.write(bytes)
  })
}

/** A complete response (skipping any 100 Continue), or undefined if more bytes are needed. */
function parse(data: string): RawResponse | undefined {
  const text = data.replace(/^HTTP\/1\.1 100 Continue\r\n\r\n/, '')
  const end = text.indexOf('\r\n\r\n')
  if (end < 0) return undefined
  const [statusLine, ...lines] = text.slice(0, end).split('\r\n')
  const headers = Object.fromEntries(lines.map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]))
  const body = text.slice(end + 4)
  if (headers['content-length'] && body.length < Number(headers['content-length'])) return undefined
  return {status: Number(statusLine!.split(' ')[1]), headers, body}
}

export function multipartHead(boundary: string, extraHeaders = ''): string {
  return `POST /upload HTTP/1.1\r\nHost: localhost\r\nContent-Type: multipart/form-data; boundary=${boundary}\r\n${extraHeaders}`
}
