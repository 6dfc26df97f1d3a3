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

export async function writeCacheFile(file: string, value: unknown): Promise<void> {
  const body = pack(value)
  const digest = createHash('sha256').update(body).digest()
  await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 })
  const temp = `${file}.${randomBytes(6).toString('hex')}.tmp`
  await fs.writeFile(temp, Buffer.concat([body, digest]), { mode: 0o600 })
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
