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
  await writeCheckedParts(file, [pack(value)])
}

/**
 * Writes `parts` and then their SHA-256 as one cache file, for caches with a
 * binary layout of their own: msgpack would copy large binaries into a buffer
 * it grows to four times what it holds (33 MiB to save the files cache of
 * 100,000 files, at the end of a backup, its memory peak).
 */
export async function writeCheckedParts(file: string, parts: readonly Uint8Array[]): Promise<void> {
  const digest = createHash('sha256')
  for (const part of parts) digest.update(part)
  await writeCacheParts(file, [...parts, digest.digest()])
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
  const body = await readCheckedBytes(file)
  if (body === null) return null
  try {
    return unpack(body)
  } catch {
    return null
  }
}

/** The bytes of the parts written by writeCheckedParts (or writeCacheFile), or null if missing, unreadable or damaged. */
export async function readCheckedBytes(file: string): Promise<Buffer | null> {
  let raw: Buffer
  try {
    raw = await fs.readFile(file)
  } catch {
    return null
  }
  if (raw.length < 32) return null
  const body = raw.subarray(0, raw.length - 32)
  return createHash('sha256').update(body).digest().equals(raw.subarray(raw.length - 32)) ? body : null
}
