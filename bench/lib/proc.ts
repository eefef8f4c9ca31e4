/** Memory figures of a process from /proc (Linux), in MB. */
import {readFileSync, writeFileSync} from 'node:fs'

import {workerPids} from '../../test/helpers/processes.js'

/** `VmRSS` (resident now) or `VmHWM` (peak resident) of a process, in MB; 0 once it is gone. */
export function memoryMb(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8')
    const kb = Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0)
    return kb / 1024
  } catch {
    return 0
  }
}

/** Peak RSS of the primary and of its largest worker so far, in MB. */
export function peaks(primary: number): {primaryMb: number; workerMb: number} {
  return {
    primaryMb: memoryMb(primary, 'VmHWM'),
    workerMb: Math.max(0, ...workerPids(primary).map((pid) => memoryMb(pid, 'VmHWM'))),
  }
}

/** Samples a process's RSS every `everyMs` and keeps the highest value. */
export function sampleRss(pid: number, everyMs = 50): {stop(): number} {
  let max = memoryMb(pid, 'VmRSS')
  const timer = setInterval(() => (max = Math.max(max, memoryMb(pid, 'VmRSS'))), everyMs)
  return {
    stop() {
      clearInterval(timer)
      return Math.max(max, memoryMb(pid, 'VmRSS'))
    },
  }
}

/** CPU time (user + system) a process has used so far, in ms (Linux clock ticks are 10 ms). */
export function cpuMs(pid: number): number {
  try {
    // Fields after the command name, which is in parentheses and may hold spaces.
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
    return (Number(fields[11]) + Number(fields[12])) * 10
  } catch {
    return 0
  }
}

/** Resets the kernel's peak-RSS counters (`VmHWM`) of a serve's primary and its workers, so what follows reports its own peak. */
export function resetPeaks(primary: number): void {
  for (const pid of [primary, ...workerPids(primary)]) {
    try {
      writeFileSync(`/proc/${pid}/clear_refs`, '5')
    } catch {
      // Not Linux, or not allowed: the peaks then cover the whole run so far.
    }
  }
}
