/**
 * How V8's old generation may grow while a backup runs: the process's
 * policy, set by the command, not by the library. (Its young generation is
 * limited when node starts, by the `cairn` launcher, cli/cairn.)
 *
 * A backup's garbage is short-lived but much of it outlives two scavenges
 * (items wait for their directory, chunks for their pack), and V8 let the
 * old generation grow to several times what survived the last full
 * collection before collecting again (82 MiB against 10–25 MiB live).
 * Growing by at most twice that: first backup of the medium corpus, peak
 * 337–370 → 283–304 MiB over 2–4 runs each, wall time within its noise,
 * user CPU +0.5 s (session 5 in bench/RESULTS.md).
 *
 * By a quarter since young generations of 1 MiB (cli/cairn) promote more of
 * it: same backup from a cold cache, 6 alternated runs each, peak 124.5
 * against 130.5 MiB (medians), wall 10.08 against 9.84 s; from the page
 * cache 7.85 against 7.68 s (3 runs each). At 40 % with 4 MiB young
 * generations it had saved 2 MiB (session 11).
 */
import { setFlagsFromString } from 'node:v8'

const HEAP_GROWING_PERCENT = 25

export function limitHeapGrowthForBackup(): void {
  setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`)
}
