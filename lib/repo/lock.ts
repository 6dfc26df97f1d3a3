/**
 * The repository's exclusive lock, held only while a writer commits (updates
 * the manifest) or deletes an archive. Readers never lock.
 *
 * The lock is the object `locks/exclusive`, created with the backend's
 * create-if-absent call and holding who took it. A lock left by a process of
 * this host that no longer exists is stale and is broken automatically; one
 * from another host can only be broken by `cairn break-lock`.
 */
import { hostname } from 'node:os'
import { CairnError } from '../errors.js'
import type { Backend } from '../storage/backend.js'

export const LOCK_KEY = 'locks/exclusive'

interface LockOwner {
  host: string
  pid: number
  time: string
}

export interface LockOptions {
  /** How long to wait for a lock held by someone else, in ms (default 10 s). */
  waitMs?: number
  signal?: AbortSignal
}

export class RepositoryLock {
  private constructor(private readonly backend: Backend) {}

  static async acquire(backend: Backend, options: LockOptions = {}): Promise<RepositoryLock> {
    const waitMs = options.waitMs ?? 10_000
    const deadline = Date.now() + waitMs
    const me: LockOwner = { host: hostname(), pid: process.pid, time: new Date().toISOString() }
    const body = Buffer.from(JSON.stringify(me))
    for (let delay = 20; ; delay = Math.min(delay * 2, 500)) {
      options.signal?.throwIfAborted()
      if (await backend.create(LOCK_KEY, body)) return new RepositoryLock(backend)
      const owner = await readOwner(backend)
      if (owner && isStale(owner)) {
        await backend.delete(LOCK_KEY)
        continue
      }
      if (Date.now() >= deadline) {
        const who = owner ? `process ${owner.pid} on ${owner.host} since ${owner.time}` : 'another process'
        throw new CairnError('locked', `the repository ${backend.location} is locked by ${who}`, {
          hint: 'wait for it to finish; if that process is gone, run: cairn break-lock REPO',
          retryable: true,
        })
      }
      await new Promise((resolve) => setTimeout(resolve, delay))
    }
  }

  async release(): Promise<void> {
    await this.backend.delete(LOCK_KEY)
  }
}

/** Removes the lock whoever holds it. For `cairn break-lock`. */
export async function breakLock(backend: Backend): Promise<boolean> {
  const existed = (await backend.stat(LOCK_KEY)) !== null
  await backend.delete(LOCK_KEY)
  return existed
}

async function readOwner(backend: Backend): Promise<LockOwner | null> {
  try {
    const value = JSON.parse((await backend.get(LOCK_KEY)).toString('utf8')) as LockOwner
    return typeof value.pid === 'number' && typeof value.host === 'string' ? value : null
  } catch {
    return null
  }
}

function isStale(owner: LockOwner): boolean {
  if (owner.host !== hostname()) return false
  if (owner.pid === process.pid) return false
  try {
    process.kill(owner.pid, 0)
    return false
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH'
  }
}
