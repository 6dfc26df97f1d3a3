/**
 * Mounts a repository through mountRepository() and measures this process's event-loop delay while it
 * serves, to see whether opening chunks stalls other FUSE requests.
 *
 *   node loop-delay-server.js REPO MOUNTPOINT WORKERS     (WORKERS 0: open chunks on the main thread)
 *
 * Env: CAIRN_PASSPHRASE, CAIRN_CONFIG_DIR, CAIRN_CACHE_DIR. stdout: {"ready":true} once mounted; on
 * the stdin line "reset" the histogram restarts ({"reset":true}); on "unmount" (or SIGTERM) it prints
 * {"loopDelayMs":{...}} and unmounts. Never touches the mount itself.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { createInterface } from 'node:readline'
import { Repository } from '../../../dist/lib/index.js'
import { mountRepository } from '../../../dist/mount/index.js'

const [repoPath, mountpoint, workersText] = process.argv.slice(2)
if (!repoPath || !mountpoint) throw new Error('usage: loop-delay-server.ts REPO MOUNTPOINT [WORKERS]')
const say = (msg: object): void => void process.stdout.write(JSON.stringify(msg) + '\n')

const repository = await Repository.open({
  location: repoPath,
  passphrase: process.env.CAIRN_PASSPHRASE ?? '',
  configDir: process.env.CAIRN_CONFIG_DIR ?? '/tmp',
  cacheDir: process.env.CAIRN_CACHE_DIR ?? null,
})
const mounted = await mountRepository({
  repository,
  mountpoint,
  workers: workersText === undefined ? undefined : Number(workersText),
  register: false,
  log: (message) => say({ log: message }),
})
let histogram = monitorEventLoopDelay({ resolution: 1 })
histogram.enable()
say({ ready: true, pid: process.pid })

const ms = (ns: number): number => Math.round(ns / 1e4) / 100
let stopping = false
const stop = async (): Promise<void> => {
  if (stopping) return
  stopping = true
  histogram.disable()
  say({ loopDelayMs: { p50: ms(histogram.percentile(50)), p99: ms(histogram.percentile(99)), max: ms(histogram.max), samples: histogram.count } })
  await mounted.unmount()
  say({ unmounted: true })
  input.close()
}
const input = createInterface({ input: process.stdin })
input.on('line', (line) => {
  if (line.trim() === 'unmount') void stop()
  if (line.trim() === 'reset') {
    histogram.disable()
    histogram = monitorEventLoopDelay({ resolution: 1 })
    histogram.enable()
    say({ reset: true })
  }
})
process.on('SIGTERM', () => void stop())
