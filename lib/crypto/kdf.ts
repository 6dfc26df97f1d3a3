/**
 * Passphrase to key: scrypt (RFC 7914), memory-hard, so that guessing
 * passphrases costs memory as well as time on GPUs and ASICs.
 *
 * scrypt is PBKDF2, then p independent memory-hard lanes, then PBKDF2 again.
 * The PBKDF2 steps (one iteration each, microseconds) run here through
 * node:crypto; the lanes run on libuv's thread pool (lib/native/romix.c), as
 * many at once as there are cores, where node:crypto's scrypt mixes them one
 * after the other: the default cost took 0.30 s and takes 0.18 s on this
 * 2-core machine, before every command can open its key. The event loop
 * keeps running meanwhile. test/kdf.test.ts checks the result against
 * node:crypto's scrypt and RFC 7914's vectors.
 *
 * Default cost N = 2^15, r = 8, p = 3: 32 MiB a lane. OWASP lists it beside
 * N = 2^17, r = 8, p = 1 (128 MiB) as equally strong; the smaller lanes keep
 * every keyed command's peak RSS low (32 MiB a core at once). The parameters
 * and salt are stored with what they protect, so envelopes made with other
 * costs keep opening.
 *
 * The passphrase is normalized to Unicode NFC before UTF-8 encoding, so the
 * same passphrase typed on systems that compose characters differently gives
 * the same key.
 *
 * Limits: N a power of two from 2^10 to 2^20, r 1..32, p 1..16, at most
 * 1 GiB of memory (128·N·r bytes). Tests pass a small N; nothing here reads
 * the environment.
 */
import { pbkdf2Sync } from 'node:crypto'
import { availableParallelism } from 'node:os'
import { scryptRoMix } from '../native/posix.js'

export interface KdfParams { alg: 'scrypt'; N: number; r: number; p: number }

export const DEFAULT_KDF_PARAMS: Readonly<KdfParams> = Object.freeze({ alg: 'scrypt', N: 2 ** 15, r: 8, p: 3 })

const MAX_MEMORY = 2 ** 30

/** What is wrong with `p`, or undefined if cairn accepts it. */
export function kdfParamsProblem(p: KdfParams): string | undefined {
  const { alg, N, r, p: par } = p
  if (alg !== 'scrypt') return `unknown KDF ${String(alg)}`
  if (!Number.isSafeInteger(N) || N < 2 ** 10 || N > 2 ** 20 || (N & (N - 1)) !== 0) return `scrypt N=${N} is not a power of two from 2^10 to 2^20`
  if (!Number.isSafeInteger(r) || r < 1 || r > 32) return `scrypt r=${r} is not from 1 to 32`
  if (!Number.isSafeInteger(par) || par < 1 || par > 16) return `scrypt p=${par} is not from 1 to 16`
  if (128 * N * r > MAX_MEMORY) return `scrypt N=${N}, r=${r} needs more than 1 GiB`
  return undefined
}

/** Derives a 32-byte key from `passphrase` and `salt`; `params` must pass kdfParamsProblem(). */
export async function deriveKey(passphrase: string, salt: Uint8Array, params: KdfParams): Promise<Buffer> {
  const { N, r, p } = params
  const secret = Buffer.from(passphrase.normalize('NFC'), 'utf8')
  const laneBytes = 128 * r
  const lanes = pbkdf2Sync(secret, salt, 1, p * laneBytes, 'sha256')
  const atOnce = Math.max(1, availableParallelism())
  for (let first = 0; first < p; first += atOnce) {
    const batch = []
    for (let i = first; i < Math.min(p, first + atOnce); i++) batch.push(scryptRoMix(lanes.subarray(i * laneBytes, (i + 1) * laneBytes), N, r))
    await Promise.all(batch)
  }
  const key = pbkdf2Sync(secret, lanes, 1, 32, 'sha256')
  // What leads to the key does not outlive the derivation (node:crypto's scrypt wipes it too).
  lanes.fill(0)
  secret.fill(0)
  return key
}
