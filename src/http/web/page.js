// The browser page: the same POST /upload, GET /status (long poll) and
// GET /result that curl and the CLI use, and POST /resize ("Resize now":
// the image straight back, no task), nothing more. With an API key (asked
// for when the server answers 401) every request carries it, the result's
// image included, which is why that is fetched rather than linked.
const $ = (id) => document.getElementById(id)
const form = $('form')
const input = $('image')
const drop = $('drop')
const range = $('scale-range')
const scale = $('scale')
const statusLine = $('status')
const errorLine = $('error')
const maxScale = Number(document.querySelector('main').dataset.maxScale) || 10

range.max = String(maxScale)
scale.max = String(maxScale)
$('scale-hint').textContent = `0 < scale ≤ ${maxScale}`

range.addEventListener('input', () => (scale.value = range.value))
scale.addEventListener('input', () => (range.value = scale.value))

input.addEventListener('change', () => showChosen(input.files[0]))
for (const type of ['dragenter', 'dragover']) {
  drop.addEventListener(type, (event) => {
    event.preventDefault()
    drop.classList.add('over')
  })
}
for (const type of ['dragleave', 'drop']) drop.addEventListener(type, () => drop.classList.remove('over'))
drop.addEventListener('drop', (event) => {
  event.preventDefault()
  if (event.dataTransfer.files.length === 0) return
  input.files = event.dataTransfer.files
  showChosen(input.files[0])
})

const KEY_STORE = 'imgscale-api-key'
$('key').value = sessionStorage.getItem(KEY_STORE) ?? ''
if ($('key').value) $('key-row').hidden = false
$('key').addEventListener('change', () => sessionStorage.setItem(KEY_STORE, $('key').value.trim()))

/** fetch, with the API key when one was given. */
function send(url, init = {}) {
  const key = $('key').value.trim()
  return fetch(url, key ? {...init, headers: {Authorization: `Bearer ${key}`}} : init)
}

form.addEventListener('submit', (event) => {
  event.preventDefault()
  void run(async (file, body) => {
    // The upload itself waits a little: a task that ends by then comes back
    // as its full status document (200), with no long poll needed.
    const answer = await call(send(`/upload?wait=${POLL_WAIT_SECONDS}`, {method: 'POST', body}))
    say(`Task ${answer.task_id}: ${answer.status}…`)
    const task = answer.created_at !== undefined && ended(answer) ? answer : await waitForEnd(answer.task_id)
    if (task.status !== 'done') return fail(task.error.message, task.error.code)
    const response = await send(task.result_url)
    if (!response.ok) return fail(`The result could not be downloaded (${response.status}).`)
    show(file, task.input, task.output, await response.blob(), `${task.task_id}.${extension(task.output.format)}`)
  })
})

$('resize-now').addEventListener('click', () => {
  void run(async (file, body) => {
    const response = await send('/resize', {method: 'POST', body})
    if (!response.ok) await call(Promise.resolve(response)) // throws the server's error
    const result = await response.blob()
    // No task document here: the answer's headers say the result's size; the browser measures the original.
    const to = {width: response.headers.get('X-Imgscale-Width'), height: response.headers.get('X-Imgscale-Height'), bytes: result.size, format: result.type.replace('image/', '')}
    const from = {...(await dimensions(file)), bytes: file.size, format: file.type.replace('image/', '')}
    const stem = file.name.replace(/\.[^.]*$/, '') || 'image'
    show(file, from, to, result, `${stem}.${extension(to.format)}`)
  })
})

/** Checks the form, then runs `request` with the file and the form's body; reports what goes wrong. */
async function run(request) {
  const file = input.files[0]
  const boxed = $('width').value !== '' || $('height').value !== ''
  const value = Number(scale.value)
  if (!file) return fail('Choose an image first.')
  if (!boxed && !(value > 0 && value <= maxScale)) return fail(`The scale factor must be more than 0 and at most ${maxScale}.`)

  reset()
  for (const id of ['submit', 'resize-now']) $(id).disabled = true
  try {
    const body = new FormData()
    body.append('image', file, file.name)
    if (boxed) {
      for (const id of ['width', 'height']) if ($(id).value !== '') body.append(id, $(id).value)
      body.append('fit', $('fit').value)
    } else {
      body.append('scale_factor', scale.value)
    }
    if ($('quality').value !== '') body.append('quality', $('quality').value)
    if ($('rotate').value !== '0') body.append('rotate', $('rotate').value)
    for (const id of ['flip', 'flop', 'grayscale']) if ($(id).checked) body.append(id, 'true')
    if ($('format').value) body.append('format', $('format').value)
    say('Uploading…')
    await request(file, body)
  } catch (error) {
    if (error.code === 'unauthorized') askForKey()
    fail(error.message, error.code)
  } finally {
    for (const id of ['submit', 'resize-now']) $(id).disabled = false
  }
}

function askForKey() {
  $('key-row').hidden = false
  $('key').focus()
}

/** Long polls short enough that a task waiting its turn shows when it starts. */
const POLL_WAIT_SECONDS = 2

async function waitForEnd(id) {
  for (;;) {
    const task = await call(send(`/status/${id}?wait=${POLL_WAIT_SECONDS}`))
    say(`Task ${id}: ${task.status}…`)
    if (ended(task)) return task
  }
}

function ended(task) {
  return task.status === 'done' || task.status === 'failed' || task.status === 'cancelled'
}

/** The JSON of a response, or an Error carrying the API's code and message. */
async function call(pending) {
  let response
  try {
    response = await pending
  } catch {
    throw new Error('The server cannot be reached.')
  }
  const body = await response.json().catch(() => null)
  if (response.ok && body) return body
  const error = new Error(body?.error?.message ?? `The server answered ${response.status}.`)
  error.code = body?.error?.code
  throw error
}

/** The original and the result side by side, each with its size, bytes and format. */
function show(file, from, to, result, name) {
  const url = URL.createObjectURL(result)
  $('original').src = URL.createObjectURL(file)
  $('original-size').textContent = describe(from)
  $('result').src = url
  $('result-size').textContent = describe(to)
  $('download').href = url
  $('download').download = name
  $('compare').hidden = false
  say(`Done: ${from.width}×${from.height} → ${to.width}×${to.height}.`)
}

function describe({width, height, bytes: size, format}) {
  return [`${width}×${height} px`, bytes(size), format].filter(Boolean).join(', ')
}

/** The size an image shows at, as the browser decodes it ("?" for a format it cannot, such as TIFF). */
async function dimensions(blob) {
  try {
    const bitmap = await createImageBitmap(blob)
    const size = {width: bitmap.width, height: bitmap.height}
    bitmap.close()
    return size
  } catch {
    return {width: '?', height: '?'}
  }
}

function extension(format) {
  return format === 'jpeg' ? 'jpg' : format
}

function showChosen(file) {
  $('chosen').textContent = file ? `${file.name} (${bytes(file.size)})` : ''
}

function reset() {
  errorLine.hidden = true
  errorLine.textContent = ''
  $('compare').hidden = true
  for (const id of ['original', 'result']) {
    if ($(id).src.startsWith('blob:')) URL.revokeObjectURL($(id).src)
    $(id).removeAttribute('src')
  }
  $('download').removeAttribute('href')
}

function say(text) {
  statusLine.textContent = text
}

function fail(message, code) {
  say('')
  errorLine.textContent = code ? `${message} (${code})` : message
  errorLine.hidden = false
}

function bytes(n) {
  if (n < 1024) return `${n} B`
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`
  return `${(n / 1024 / 1024).toFixed(1)} MB`
}
