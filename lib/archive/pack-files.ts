/**
 * Synchronous range reads of local pack files for a writer thread, with the
 * most recently used files kept open (a restore reads many small blobs from
 * each pack, mostly in order). Reads go into one reused buffer: the result
 * is valid until the next read.
 */
import { closeSync, openSync, readSync } from 'node:fs'
import { CairnError } from '../errors.js'

/** Reads above this size get a buffer of their own instead of growing the shared one. */
const SHARED_BUFFER_LIMIT = 16 * 1024 * 1024

export class PackFiles {
  private readonly fds = new Map<string, number>()
  private buffer = Buffer.alloc(0)

  constructor(private readonly maxOpen = 32) {}

  read(file: string, offset: number, length: number): Buffer {
    const fd = this.fdOf(file)
    const out = length <= this.buffer.length ? this.buffer : length <= SHARED_BUFFER_LIMIT ? (this.buffer = Buffer.allocUnsafeSlow(length)) : Buffer.allocUnsafeSlow(length)
    let done = 0
    try {
      while (done < length) {
        const n = readSync(fd, out, done, length - done, offset + done)
        if (n === 0) {
          throw new CairnError('integrity', `pack ${file} is shorter than the index says (truncated?)`, { hint: 'the repository is damaged; run cairn check' })
        }
        done += n
      }
    } catch (err) {
      throw asRepositoryError(err, file)
    }
    return out.subarray(0, length)
  }

  closeAll(): void {
    for (const fd of this.fds.values()) closeSync(fd)
    this.fds.clear()
  }

  private fdOf(file: string): number {
    let fd = this.fds.get(file)
    if (fd !== undefined) {
      // Most recently used goes last.
      this.fds.delete(file)
      this.fds.set(file, fd)
      return fd
    }
    try {
      fd = openSync(file, 'r')
    } catch (err) {
      throw asRepositoryError(err, file)
    }
    this.fds.set(file, fd)
    if (this.fds.size > this.maxOpen) {
      const [oldest, oldFd] = this.fds.entries().next().value as [string, number]
      this.fds.delete(oldest)
      closeSync(oldFd)
    }
    return fd
  }
}

function asRepositoryError(err: unknown, file: string): unknown {
  if (err instanceof CairnError) return err
  const code = (err as NodeJS.ErrnoException).code
  if (code === 'ENOENT') return new CairnError('missing-object', `pack ${file} is missing`, { hint: 'the repository is damaged or was changed underneath; run cairn check', cause: err })
  return new CairnError('io', `cannot read pack ${file}: ${(err as Error).message}`, { retryable: code === 'EAGAIN' || code === 'EINTR', cause: err })
}
