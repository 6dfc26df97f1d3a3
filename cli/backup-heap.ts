/**
 * How V8's heap may grow while a backup runs: the process's policy, set by
 * the command, not by the library.
 *
 * A backup's garbage is short-lived but much of it outlives two scavenges
 * (items wait for their directory, chunks for their pack).
 *
 * - The old generation: V8 let it grow to several times what survived the
 *   last full collection before collecting again (82 MiB against 10–25 MiB
 *   live). Growing by at most twice that: first backup of the medium corpus,
 *   peak 337–370 → 283–304 MiB over 2–4 runs each, wall time within its
 *   noise, user CPU +0.5 s (session 5 in bench/RESULTS.md).
 * - The young generation: V8 doubles its semi-spaces up to 16 MiB each, all
 *   of it resident. The maximum can only be given when node starts
 *   (--max-semi-space-size), but the growth factor is read at each growth,
 *   so growth stops once a semi-space is 4 MiB. First backup of the medium
 *   corpus, 3 runs each, alternated: peak 269–277 → 241–254 MiB, wall time
 *   9.4–9.9 s either way. Stopping at 2 MiB saved nothing (272–273 MiB: more
 *   survives into the old generation); `--max-semi-space-size=4` at startup
 *   gave the same 246 MiB (session 6).
 */
import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8'

const HEAP_GROWING_PERCENT = 100
const SEMI_SPACE_BYTES = 4 * 1024 * 1024
/** How often the young generation's size is looked at until it stops growing; growth happens at scavenges, far apart. */
const CHECK_MS = 50

export function limitHeapGrowthForBackup(): void {
  setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`)
  const timer = setInterval(() => {
    const young = getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')
    // new_space is both semi-spaces.
    if (!young || young.space_size < 2 * SEMI_SPACE_BYTES) return
    setFlagsFromString('--semi-space-growth-factor=1')
    clearInterval(timer)
  }, CHECK_MS)
  timer.unref()
}
