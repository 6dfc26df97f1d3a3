/**
 * Passphrase to key: scrypt (RFC 7914), memory-hard, so that guessing
 * passphrases costs memory as well as time on GPUs and ASICs.
 *
 * Runs through node:crypto's asynchronous `scrypt`, on the libuv thread pool:
 * the event loop keeps running meanwhile. Default cost N = 2^15, r = 8, p = 3:
 * 32 MiB and ≈0.35 s on this machine. OWASP lists it beside N = 2^17, r = 8,
 * p = 1 (128 MiB, ≈0.40 s) as equally strong; the smaller memory keeps every
 * keyed command's peak RSS low (75 MiB for the derivation in a bare node
 * process against 173 MiB). The parameters and salt are stored with what
 * they protect, so envelopes made with other costs keep opening.
 *
 * The passphrase is normalized to Unicode NFC before UTF-8 encoding, so the
 * same passphrase typed on systems that compose characters differently gives
 * the same key.
 *
 * Limits: N a power of two from 2^10 to 2^20, r 1..32, p 1..16, at most
 * 1 GiB of memory (128·N·r bytes). Tests pass a small N; nothing here reads
 * the environment.
 */
import { scrypt } from 'node:crypto'

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
export function deriveKey(passphrase: string, salt: Uint8Array, params: KdfParams): Promise<Buffer> {
  const { N, r, p } = params
  // OpenSSL needs 128·r·(N + p + 2) bytes; allow that plus slack.
  const maxmem = 128 * r * (N + p + 2) + 1024 * 1024
  return new Promise((resolve, reject) => {
    scrypt(Buffer.from(passphrase.normalize('NFC'), 'utf8'), salt, 32, { N, r, p, maxmem }, (err, key) => {
      if (err) reject(err)
      else resolve(key)
    })
  })
}
