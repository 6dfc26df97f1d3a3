/**
 * Live mounts announce themselves in the repository, so that a maintenance
 * command that removes data (a future `cairn compact`) can wait for them.
 *
 * Object `locks/mounts/<16 random bytes, hex>`, plain JSON written with the
 * backend's put (no secrets in it, so no key is needed to read it):
 *
 *   { "v": 1, "host": "...", "pid": 123, "mountpoint": "/mnt/x",
 *     "archive": null | "name", "started": ISO time, "heartbeat": ISO time,
 *     "heartbeatMs": 60000 }
 *
 * The mount rewrites it every `heartbeatMs` with a fresh heartbeat and
 * deletes it when it unmounts; `cairn umount` deletes the one a crashed
 * mount left. A registration is live while its heartbeat is younger than
 * three intervals and, on this host, its process exists.
 *
 * Why this is enough for correctness, not only politeness: every blob is
 * sealed with its type and id as associated data, so a mount that reads a
 * blob moved or removed by a compaction gets an authentication failure or a
 * missing object (EIO for that read), never another blob's bytes. The
 * registration lets compact avoid even that, by waiting for (or refusing
 * while) live mounts exist.
 */
import { randomBytes } from 'node:crypto'
import { hostname } from 'node:os'
import type { Backend } from '../lib/index.js'

export const MOUNTS_PREFIX = 'locks/mounts/'
export const DEFAULT_HEARTBEAT_MS = 60_000

export interface MountRegistrationInfo {
  v: 1
  host: string
  pid: number
  mountpoint: string
  archive: string | null
  started: string
  heartbeat: string
  heartbeatMs: number
}

export interface RegistrationOptions {
  heartbeatMs?: number
  /** A heartbeat that could not be written (the mount goes on). */
  onError?: (err: unknown) => void
}

export class MountRegistration {
  private timer: NodeJS.Timeout | null = null
  private released = false
  private writing: Promise<void> = Promise.resolve()

  private constructor(readonly backend: Backend, readonly key: string, private readonly info: MountRegistrationInfo) {}

  static async register(backend: Backend, what: { mountpoint: string; archive: string | null }, options: RegistrationOptions = {}): Promise<MountRegistration> {
    const heartbeatMs = options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS
    const now = new Date().toISOString()
    const info: MountRegistrationInfo = { v: 1, host: hostname(), pid: process.pid, mountpoint: what.mountpoint, archive: what.archive, started: now, heartbeat: now, heartbeatMs }
    const reg = new MountRegistration(backend, MOUNTS_PREFIX + randomBytes(16).toString('hex'), info)
    await reg.write()
    reg.timer = setInterval(() => {
      reg.writing = reg.writing.then(() => reg.write()).catch((err: unknown) => options.onError?.(err))
    }, heartbeatMs)
    reg.timer.unref()
    return reg
  }

  private async write(): Promise<void> {
    if (this.released) return
    this.info.heartbeat = new Date().toISOString()
    await this.backend.put(this.key, Buffer.from(JSON.stringify(this.info)))
  }

  /** Stops the heartbeat and removes the object. */
  async release(): Promise<void> {
    if (this.released) return
    this.released = true
    if (this.timer) clearInterval(this.timer)
    await this.writing.catch(() => undefined)
    await this.backend.delete(this.key)
  }
}

export interface RegisteredMount {
  key: string
  /** Null when the object is unreadable (then treat it as live until it is old: it may be mid-write). */
  info: MountRegistrationInfo | null
  live: boolean
}

/** Every registered mount, and whether it is live: what a compaction waits for. */
export async function listMountRegistrations(backend: Backend, now = Date.now()): Promise<RegisteredMount[]> {
  const out: RegisteredMount[] = []
  for await (const obj of backend.list(MOUNTS_PREFIX)) {
    let info: MountRegistrationInfo | null = null
    try {
      const value = JSON.parse((await backend.get(obj.key)).toString('utf8')) as MountRegistrationInfo
      if (value?.v === 1 && typeof value.pid === 'number' && typeof value.heartbeat === 'string') info = value
    } catch {
      info = null
    }
    out.push({ key: obj.key, info, live: info === null || isLive(info, now) })
  }
  return out
}

export function isLive(info: MountRegistrationInfo, now = Date.now()): boolean {
  const age = now - Date.parse(info.heartbeat)
  if (!(age < 3 * Math.max(1000, info.heartbeatMs))) return false
  if (info.host !== hostname()) return true
  return processExists(info.pid)
}

export function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}
