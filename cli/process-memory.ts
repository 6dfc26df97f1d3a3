/**
 * Memory of the long-lived commands (a mount, a backup), through the native helper (lib/native/posix.ts);
 * without it, both do nothing.
 */

/**
 * Node keeps about 40 MiB of its own binary resident after startup, and a long command (a mount, a
 * backup) uses little of it again. Those pages are dropped from the process's resident set once the
 * command is under way: they stay in the page cache, and what is used again comes back with a minor
 * fault (dropCleanFilePages). Measured in bench/RESULTS.md, sessions 7 and 8. A backup calls it twice: when
 * it starts, and once its sealing workers, each of which boots node again, are up.
 */
export function releaseStartupPages(log?: (line: string) => void): void {
  import('../lib/native/posix.js')
    .then(({ dropCleanFilePages }) => {
      const dropped = dropCleanFilePages()
      log?.(`released ${(dropped / 2 ** 20).toFixed(1)} MiB of startup pages`)
    })
    .catch(() => undefined)
}

/**
 * Fixes glibc's thresholds instead of letting them rise after big blocks are freed (its default, up to 32 MiB
 * and twice that), so that memory freed goes back to the system: blocks of 256 KiB and more are mmap-served,
 * and the heap's free top is trimmed above 1 MiB (fixMallocMmapThreshold). For the mount daemon, whose blocks
 * above 256 KiB are few (a big listing, the optimizing compiler's zones, the chunks of file reads). Walking the
 * medium corpus's archive, 3 alternated runs each: peak 59-61 MiB against 65-66 with glibc adapting them, the
 * walk as fast; cold reads of a 1 GiB file as fast (587-673 against 528-638 MiB/s, 4 runs each). Those were
 * 128 KiB for both, which on a VM whose page faults are slow cost the walk 18,000 faults (the tree blocks of
 * exactly 128 KiB mmap-served and unmapped, the heap trimmed and grown back): 256 KiB and 1 MiB took 9,000,
 * the walk 1.67 -> 1.50 s, its CPU 1.94 -> 1.70 s, the peak 61.5 -> 63.4 MB (4 alternated runs each,
 * bench/RESULTS.md, session 15).
 */
export async function holdMallocThresholds(): Promise<void> {
  const { fixMallocMmapThreshold } = await import('../lib/native/posix.js')
  fixMallocMmapThreshold(256 * 1024, 1024 * 1024)
}
