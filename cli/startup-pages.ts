/**
 * Node keeps about 40 MiB of its own binary resident after startup, and a long command (a mount, a
 * backup) uses little of it again. Those pages are dropped from the process's resident set once the
 * command is under way: they stay in the page cache, and what is used again comes back with a minor
 * fault (lib/native/posix.ts, dropCleanFilePages). Measured in bench/RESULTS.md, session 7. Without the
 * native helper nothing is dropped.
 */
export function releaseStartupPages(log?: (line: string) => void): void {
  import('../lib/native/posix.js')
    .then(({ dropCleanFilePages }) => {
      const dropped = dropCleanFilePages()
      log?.(`released ${(dropped / 2 ** 20).toFixed(1)} MiB of startup pages`)
    })
    .catch(() => undefined)
}
