/** The embedded task backend (the data directory of one serve) against the conformance suite. */

import {DEFAULTS, type ServiceConfig} from '../../src/config.js'
import {fetcherOf} from '../../src/fetch/image-fetcher.js'
import {EmbeddedBackend} from '../../src/tasks/embedded-backend.js'
import {FakeServerB} from '../helpers/fake-server-b.js'
import {LOOPBACK_ALLOW, metrics, removeDir, silent, spooled, tempDir} from '../helpers/in-process.js'
import {heldJob, taskBackendConformance, type Harness, type HarnessOptions} from './task-backend.conformance.js'

async function openEmbedded(options: HarnessOptions): Promise<Harness> {
  const dataDir = tempDir()
  const config: ServiceConfig = {
    ...DEFAULTS,
    dataDir,
    workers: 1,
    inflightPerWorker: options.inflight,
    maxQueue: options.maxQueue,
    resultTtlMs: options.resultTtlMs,
    fetchAllow: LOOPBACK_ALLOW,
  }
  let backend: EmbeddedBackend
  let serverB: FakeServerB
  const boot = async (): Promise<void> => {
    backend = await EmbeddedBackend.open(config, metrics(), silent)
    serverB = new FakeServerB()
    backend.start({client: serverB, workers: serverB}, fetcherOf(config))
  }
  await boot()
  const harness: Harness = {
    get backend() {
      return backend
    },
    upload: () => spooled(backend.dir),
    async job(n) {
      const call = await serverB.job(n)
      return heldJob(call)
    },
    async restart() {
      // As a SIGKILL would leave it: nothing drained, the lock taken over.
      await backend.close()
      await boot()
    },
    async close() {
      await backend.close()
      removeDir(dataDir)
    },
  }
  return harness
}

taskBackendConformance('embedded (data directory)', openEmbedded)
