/**
 * The secret keys of a repository, generated once when it is created.
 *
 * - `encKey`: derives the one-time AES-256-GCM key of each object
 *   (sealer.ts), or keys the HMAC tags in 'authenticated' mode;
 * - `macKey`: keys the HMAC-SHA256 chunk ids (chunk-id.ts);
 * - `chunkerSeed`: keys the chunker's gear table (chunker/gear-table.ts).
 * Three independent 256-bit keys from the OS CSPRNG, so that no use of one
 * can leak anything about another.
 *
 * Encoded form (MessagePack map, in this key order):
 *   { v: 1, enc: bin[32], mac: bin[32], seed: bin[32] }
 * It is only ever stored sealed (key-envelope.ts).
 */
import { randomBytes } from 'node:crypto'
import { CairnError } from '../errors.js'
import { pack, unpack } from '../encoding/msgpack.js'

export interface KeyMaterial { encKey: Buffer; macKey: Buffer; chunkerSeed: Buffer }

const KEY_LENGTH = 32

export function generateKeyMaterial(): KeyMaterial {
  return { encKey: randomBytes(KEY_LENGTH), macKey: randomBytes(KEY_LENGTH), chunkerSeed: randomBytes(KEY_LENGTH) }
}

export function encodeKeyMaterial(km: KeyMaterial): Buffer {
  return pack({ v: 1, enc: km.encKey, mac: km.macKey, seed: km.chunkerSeed })
}

/** Decodes and checks encoded key material; the keys are copies, not views of `buf`. */
export function decodeKeyMaterial(buf: Uint8Array): KeyMaterial {
  let value: unknown
  try {
    value = unpack(buf)
  } catch {
    value = undefined
  }
  const record = (typeof value === 'object' && value !== null ? value : {}) as Record<string, unknown>
  const key = (k: unknown): Buffer | undefined =>
    k instanceof Uint8Array && k.length === KEY_LENGTH ? Buffer.from(k) : undefined
  const encKey = key(record.enc)
  const macKey = key(record.mac)
  const chunkerSeed = key(record.seed)
  if (record.v !== 1 || !encKey || !macKey || !chunkerSeed) {
    throw new CairnError('integrity', 'the repository key material is malformed', {
      hint: 'the key file or key envelope is damaged; restore it from a backup copy',
    })
  }
  return { encKey, macKey, chunkerSeed }
}
