/**
 * A small local record per mount, so that `cairn umount` can tell a live
 * mount from one whose process died, and clean up after the dead one (its
 * registration object in the repository included).
 *
 * `<dir>/<sha256(mountpoint) first 16 hex>.json`, JSON:
 *   { "v": 1, "pid": 123, "mountpoint": "/mnt/x", "minor": 57,
 *     "repository": "/backups/repo" | null, "registration": "locks/mounts/..." | null,
 *     "started": ISO time }
 * `repository` is a local path (the only backend today); null for others.
 */
import { createHash } from 'node:crypto'
import { promises as fs } from 'node:fs'
import * as path from 'node:path'

export interface MountRecord {
  v: 1
  pid: number
  mountpoint: string
  minor: number
  repository: string | null
  registration: string | null
  started: string
}

export function recordPath(dir: string, mountpoint: string): string {
  return path.join(dir, createHash('sha256').update(mountpoint).digest('hex').slice(0, 16) + '.json')
}

export async function writeRecord(dir: string, record: MountRecord): Promise<void> {
  await fs.mkdir(dir, { recursive: true, mode: 0o700 })
  const file = recordPath(dir, record.mountpoint)
  const temp = `${file}.${process.pid}.tmp`
  await fs.writeFile(temp, JSON.stringify(record) + '\n', { mode: 0o600 })
  await fs.rename(temp, file)
}

export async function readRecord(dir: string, mountpoint: string): Promise<MountRecord | null> {
  try {
    const value = JSON.parse(await fs.readFile(recordPath(dir, mountpoint), 'utf8')) as MountRecord
    return value?.v === 1 && value.mountpoint === mountpoint && typeof value.pid === 'number' ? value : null
  } catch {
    return null
  }
}

/** Removes the record of `mountpoint`, only if it is the one of process `pid` when given. */
export async function removeRecord(dir: string, mountpoint: string, pid?: number): Promise<void> {
  if (pid !== undefined && (await readRecord(dir, mountpoint))?.pid !== pid) return
  await fs.rm(recordPath(dir, mountpoint), { force: true })
}
