/**
 * Key envelope: the repository's KeyMaterial sealed with a passphrase, as
 * stored in the repository (repokey) or in a key file (keyfile).
 *
 * Layout (MessagePack map, keys in this order):
 *   { v: 1,
 *     repo: string,                          repository id the key belongs to
 *     kdf: { alg: 'scrypt', N, r, p, salt: bin[32] },
 *     iv: bin[12],
 *     sealed: bin,                           ciphertext || tag[16]
 *     sum: bin[16] }
 *   kek    = scrypt(NFC(passphrase), salt, N, r, p)           (kdf.ts)
 *   sealed = AES-256-GCM(kek, iv, encodeKeyMaterial(km), aad)
 *   aad    = "cairn-key-envelope-v1" || lp(repo) || u32be N || u32be r || u32be p || lp(salt)
 *   sum    = SHA-256(aad || iv || sealed)[0..16]
 * where lp(x) = u32be(len x) || x. Every seal draws a new salt and iv.
 *
 * Why: the repository id and KDF parameters are in the GCM AAD, so an
 * envelope cannot be moved to another repository or have its parameters
 * swapped without failing. `sum` is an unkeyed checksum that tells a damaged
 * envelope (CairnError 'integrity') from a wrong passphrase (the GCM tag fails
 * on an intact envelope: 'wrong-passphrase'); it adds no security.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto'
import { CairnError } from '../errors.js'
import { pack, unpack } from '../encoding/msgpack.js'
import { decodeKeyMaterial, encodeKeyMaterial, type KeyMaterial } from './key-material.js'
import { DEFAULT_KDF_PARAMS, deriveKey, kdfParamsProblem, type KdfParams } from './kdf.js'

const DOMAIN = Buffer.from('cairn-key-envelope-v1', 'ascii')
const SALT_LENGTH = 32
const IV_LENGTH = 12
const TAG_LENGTH = 16
const SUM_LENGTH = 16

function u32(n: number): Buffer {
  const b = Buffer.allocUnsafe(4)
  b.writeUInt32BE(n)
  return b
}

function lp(x: Uint8Array): Buffer[] {
  return [u32(x.length), Buffer.from(x.buffer, x.byteOffset, x.length)]
}

function envelopeAad(repoId: string, kdf: KdfParams, salt: Uint8Array): Buffer {
  return Buffer.concat([DOMAIN, ...lp(Buffer.from(repoId, 'utf8')), u32(kdf.N), u32(kdf.r), u32(kdf.p), ...lp(salt)])
}

function checksum(aad: Buffer, iv: Uint8Array, sealed: Uint8Array): Buffer {
  return createHash('sha256').update(aad).update(iv).update(sealed).digest().subarray(0, SUM_LENGTH)
}

export async function sealKeyMaterial(km: KeyMaterial, passphrase: string, repoId: string, kdf?: Partial<KdfParams>): Promise<Buffer> {
  const params: KdfParams = { ...DEFAULT_KDF_PARAMS, ...kdf }
  const problem = kdfParamsProblem(params)
  if (problem !== undefined) throw new CairnError('bad-argument', `bad key derivation parameters: ${problem}`)
  const salt = randomBytes(SALT_LENGTH)
  const iv = randomBytes(IV_LENGTH)
  const kek = await deriveKey(passphrase, salt, params)
  const aad = envelopeAad(repoId, params, salt)
  const cipher = createCipheriv('aes-256-gcm', kek, iv, { authTagLength: TAG_LENGTH })
  cipher.setAAD(aad)
  const sealed = Buffer.concat([cipher.update(encodeKeyMaterial(km)), cipher.final(), cipher.getAuthTag()])
  return pack({
    v: 1,
    repo: repoId,
    kdf: { alg: params.alg, N: params.N, r: params.r, p: params.p, salt },
    iv,
    sealed,
    sum: checksum(aad, iv, sealed),
  })
}

export async function openKeyMaterial(envelope: Uint8Array, passphrase: string, repoId: string): Promise<KeyMaterial> {
  const { repo, kdf, salt, iv, sealed, sum } = parseEnvelope(envelope)
  if (repo !== repoId) {
    throw new CairnError('bad-config', `this key belongs to repository ${repo}, not to ${repoId}`, {
      hint: "use this repository's own key",
    })
  }
  const aad = envelopeAad(repo, kdf, salt)
  if (!checksum(aad, iv, sealed).equals(sum)) throw malformed('its checksum does not match')
  const kek = await deriveKey(passphrase, salt, kdf)
  const decipher = createDecipheriv('aes-256-gcm', kek, iv, { authTagLength: TAG_LENGTH })
  decipher.setAAD(aad)
  decipher.setAuthTag(sealed.subarray(sealed.length - TAG_LENGTH))
  const plain = decipher.update(sealed.subarray(0, sealed.length - TAG_LENGTH))
  try {
    decipher.final()
  } catch {
    throw new CairnError('wrong-passphrase', 'wrong passphrase for this repository', {
      hint: 'check CAIRN_PASSPHRASE / CAIRN_PASSCOMMAND',
    })
  }
  return decodeKeyMaterial(plain)
}

function malformed(why: string): CairnError {
  return new CairnError('integrity', `the key envelope is damaged: ${why}`, {
    hint: 'restore the key (repository key or key file) from a backup copy',
  })
}

interface ParsedEnvelope { repo: string; kdf: KdfParams; salt: Uint8Array; iv: Uint8Array; sealed: Uint8Array; sum: Uint8Array }

function parseEnvelope(envelope: Uint8Array): ParsedEnvelope {
  let value: unknown
  try {
    value = unpack(envelope)
  } catch {
    throw malformed('it is not MessagePack')
  }
  const record = asRecord(value)
  if (typeof record.v === 'number' && record.v !== 1) {
    throw new CairnError('unsupported-version', `key envelope version ${record.v} is not supported`, {
      hint: 'upgrade cairn',
    })
  }
  const k = asRecord(record.kdf)
  const kdf = { alg: k.alg, N: k.N, r: k.r, p: k.p } as KdfParams
  const { repo, iv, sealed, sum } = record
  const { salt } = k
  if (record.v !== 1 || typeof repo !== 'string') throw malformed('missing version or repository id')
  const problem = kdfParamsProblem(kdf)
  if (problem !== undefined) throw malformed(problem)
  if (!isBytes(salt, SALT_LENGTH) || !isBytes(iv, IV_LENGTH) || !isBytes(sum, SUM_LENGTH)) throw malformed('bad salt, iv or checksum')
  if (!(sealed instanceof Uint8Array) || sealed.length <= TAG_LENGTH) throw malformed('no sealed key')
  return { repo, kdf, salt, iv, sealed, sum }
}

function asRecord(value: unknown): Record<string, unknown> {
  return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : {}
}

function isBytes(x: unknown, length: number): x is Uint8Array {
  return x instanceof Uint8Array && x.length === length
}
