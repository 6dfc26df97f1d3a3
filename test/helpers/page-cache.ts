/** Dropping a file's pages from the page cache, as memory pressure would. */
import { execFileSync, spawnSync } from 'node:child_process'

/**
 * Writes `file`'s dirty pages out and asks the kernel to drop them all (fsync, then posix_fadvise
 * DONTNEED, through python3, which every machine that builds cairn's addons has). Whether it did depends
 * on the filesystem: tmpfs keeps them.
 */
export function evictFromPageCache(file: string): void {
  execFileSync('python3', ['-c', 'import os, sys; fd = os.open(sys.argv[1], os.O_RDONLY); os.fsync(fd); os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)', file])
}

/**
 * The bytes of `file` in the page cache, by util-linux's fincore (mincore or cachestat: looking does not
 * read anything in, where a probing read would start the kernel's read-ahead). null without fincore.
 */
export function cachedBytes(file: string): number | null {
  const run = spawnSync('fincore', ['--bytes', '--noheadings', '--output', 'RES', file], { encoding: 'utf8' })
  return run.status === 0 ? Number(run.stdout.trim()) : null
}
