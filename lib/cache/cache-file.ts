/**
 * Files in the local cache directory (chunk index, files cache, tree cache):
 * a msgpack body followed by its SHA-256, written atomically. A cache file
 * that is missing, damaged or unreadable reads as null: a cache only ever
 * saves work, so losing one costs time, never data.
 */
import { createHash, randomBytes } from 'node:crypto'
import { promises as fs } from 'node:fs'
import * as path from 'node:path'
import { pack, unpack } from '../encoding/msgpack.js'
import { writeParts } from '../storage/write-parts.js'

export async function writeCacheFile(file: string, value: unknown): Promise<void> {
  const body = pack(value)
  await writeCacheParts(file, [body, createHash('sha256').update(body).digest()])
}

/**
 * Writes `parts` one after the other as `file`, atomically (a temporary file renamed over it), for cache
 * files with a layout of their own. Parts are written as they are: a cache of a million files is tens of
 * MB, and joining them first was one more copy at a backup's peak.
 */
export async function writeCacheParts(file: string, parts: readonly Uint8Array[]): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 })
  const temp = `${file}.${randomBytes(6).toString('hex')}.tmp`
  const handle = await fs.open(temp, 'w', 0o600)
  try {
    await writeParts(handle, parts)
  } finally {
    await handle.close()
  }
  await fs.rename(temp, file)
}

/** The value written by writeCacheFile, or null. Binary fields may be views into the file's bytes. */
export async function readCacheFile(file: string): Promise<unknown> {
  let raw: Buffer
  try {
    raw = await fs.readFile(file)
  } catch {
    return null
  }
  if (raw.length < 32) return null
  const body = raw.subarray(0, raw.length - 32)
  if (!createHash('sha256').update(body).digest().equals(raw.subarray(raw.length - 32))) return null
  try {
    return unpack(body)
  } catch {
    return null
  }
}
