/**
 * Seals every object cairn stores: encrypts and/or authenticates it, bound
 * to `aad` (the caller puts the object type and id there, so that an object
 * cannot be passed off as another one).
 *
 * Byte layouts (the first byte names the scheme; open() accepts only its own):
 *
 *   repokey, keyfile   0x01 | salt[24] | ciphertext | tag[16]        (41 bytes overhead)
 *     key = HMAC-SHA256(encKey, "cairn-obj" || salt)   one-time AES-256 key
 *     ciphertext, tag = AES-256-GCM(key, iv = 12 zero bytes, plain, aad = 0x01 || aad)
 *
 *   authenticated      0x02 | plain | tag[16]                         (17 bytes overhead)
 *     tag = HMAC-SHA256(encKey, "cairn-auth" || u32be(len aad) || aad || plain)[0..16]
 *
 *   none               0x03 | plain | sum[16]                         (17 bytes overhead)
 *     sum = SHA-256("cairn-none" || u32be(len aad) || aad || plain)[0..16]
 *
 * Why a one-time key per object: AES-GCM breaks down completely if a
 * (key, nonce) pair ever repeats (NIST SP 800-38D §8), and cairn has many
 * writers (processes, machines) that share the key and never coordinate, so a
 * counter is impossible, and random 96-bit nonces are limited to 2^32 messages
 * per key (SP 800-38D §8.3). Drawing a 192-bit random salt and deriving a
 * fresh key from it with a PRF (HMAC-SHA256, RFC 2104) instead means each key
 * encrypts exactly one message, so a fixed IV is safe; two objects share a key
 * only if two salts collide, a 2^-96 event after 2^48 objects. This is the
 * construction of XChaCha20 (draft-irtf-cfrg-xchacha: HChaCha20 derives a
 * subkey from a 192-bit nonce), with HMAC in place of HChaCha20 so that the
 * bulk cipher stays OpenSSL's AES-GCM (≈4 GB/s here, against ≈0.1 GB/s for
 * a JavaScript XChaCha20). The salt is not authenticated separately: a wrong
 * salt gives a wrong key, and the tag fails.
 *
 * Why a 16-byte HMAC tag: truncating HMAC to 128 bits is allowed by RFC 2104
 * §5 and NIST SP 800-107 §5.3.3; a forger must guess 128 bits per attempt,
 * the same margin as the GCM tag. 'authenticated' still keys ids and tags, so
 * only someone with the key can add or change objects.
 *
 * 'none' detects damage (bit rot, truncation, an object stored under the
 * wrong name), not tampering: anyone can recompute the checksum.
 *
 * open() throws CairnError('integrity') on any failure and never returns
 * unauthenticated data.
 */
import { createCipheriv, createDecipheriv, createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import { CairnError } from '../errors.js'
import type { EncryptionMode } from './modes.js'
import type { KeyMaterial } from './key-material.js'
import { nativeHelperLoads, openAesGcmInPlace, sealAesGcmInPlace } from '../native/posix.js'

export interface Sealer {
  readonly overhead: number
  /** Bytes before the payload in a sealed object (the rest of the overhead is a 16-byte tag after it). */
  readonly headLength: number
  seal(aad: Uint8Array, plain: Uint8Array): Buffer
  /**
   * Seals in place: `buf` holds the payload at [headLength, headLength +
   * payloadLength) and room for the tag after it; the head and tag are
   * written around it (and, when encrypting, the payload becomes
   * ciphertext). Returns the sealed length, which starts at buf[0]. The
   * pipeline workers seal this way into shared memory the pack writer reads
   * from, so that no buffer is allocated per blob.
   */
  sealInPlace(aad: Uint8Array, buf: Buffer, payloadLength: number): number
  /** The plaintext (possibly a view of `sealed`), or CairnError('integrity'). */
  open(aad: Uint8Array, sealed: Uint8Array): Buffer
  /**
   * As open(), but may decrypt in place: the plaintext is a view of
   * `sealed`, whose bytes are overwritten (garbage if it fails). For
   * callers that read the sealed bytes into a buffer of their own and use
   * them once (restore's writer threads), so nothing is allocated per blob.
   */
  openInPlace(aad: Uint8Array, sealed: Buffer): Buffer
}

const SALT_LENGTH = 24
const TAG_LENGTH = 16
const ZERO_IV = Buffer.alloc(12)
const OBJ_DOMAIN = Buffer.from('cairn-obj', 'ascii')
const AUTH_DOMAIN = Buffer.from('cairn-auth', 'ascii')
const NONE_DOMAIN = Buffer.from('cairn-none', 'ascii')

// First byte of a sealed object.
const GCM = 0x01
const HMAC = 0x02
const CHECKSUM = 0x03

/** The first byte of the objects `mode` seals (what lib/native/blob-batch.c is told to expect). */
export function sealingScheme(mode: EncryptionMode): number {
  return mode === 'none' ? CHECKSUM : mode === 'authenticated' ? HMAC : GCM
}

export function makeSealer(mode: EncryptionMode, km: KeyMaterial | null): Sealer {
  if (mode === 'none') return new ChecksumSealer()
  if (km === null) throw new TypeError(`encryption mode ${mode} needs key material`)
  return mode === 'authenticated' ? new HmacSealer(km.encKey) : new GcmSealer(km.encKey)
}

/** The one-time AES-256 key of an object: HMAC-SHA256(encKey, "cairn-obj" || salt). */
export function deriveObjectKey(encKey: Uint8Array, salt: Uint8Array): Buffer {
  return createHmac('sha256', encKey).update(OBJ_DOMAIN).update(salt).digest()
}

/**
 * Salts come from the CSPRNG in bulk, a thousand at a time: a call to
 * randomBytes costs about 5 µs whatever its size, which was 0.5 s per worker
 * thread in a backup of 100,000 small files. The bytes are the same
 * CSPRNG output either way.
 */
const SALTS_PER_DRAW = 1024
let salts = Buffer.alloc(0)
let saltAt = 0

function takeSalt(): Buffer {
  if (saltAt + SALT_LENGTH > salts.length) {
    salts = randomBytes(SALT_LENGTH * SALTS_PER_DRAW)
    saltAt = 0
  }
  saltAt += SALT_LENGTH
  return salts.subarray(saltAt - SALT_LENGTH, saltAt)
}

function failed(): CairnError {
  return new CairnError('integrity', 'an object failed authentication: the repository is damaged or was tampered with', {
    hint: 'run cairn check to find the damaged objects',
  })
}

function checkScheme(sealed: Uint8Array, scheme: number, overhead: number): void {
  if (sealed.length < overhead || sealed[0] !== scheme) throw failed()
}

class GcmSealer implements Sealer {
  readonly overhead = 1 + SALT_LENGTH + TAG_LENGTH
  readonly headLength = 1 + SALT_LENGTH
  private inPlace: boolean | undefined
  constructor(private readonly encKey: Buffer) {}

  /** node:crypto; sealInPlace gives the same layout through the native addon (seal.c). */
  seal(aad: Uint8Array, plain: Uint8Array): Buffer {
    const head = Buffer.allocUnsafe(this.headLength)
    head[0] = GCM
    takeSalt().copy(head, 1)
    const cipher = createCipheriv('aes-256-gcm', deriveObjectKey(this.encKey, head.subarray(1)), ZERO_IV, { authTagLength: TAG_LENGTH })
    cipher.setAAD(head.subarray(0, 1))
    cipher.setAAD(aad)
    const body = cipher.update(plain)
    cipher.final() // GCM is a stream mode: nothing left to output
    return Buffer.concat([head, body, cipher.getAuthTag()])
  }

  sealInPlace(aad: Uint8Array, buf: Buffer, payloadLength: number): number {
    buf[0] = GCM
    takeSalt().copy(buf, 1)
    sealAesGcmInPlace(this.encKey, buf, payloadLength, aad)
    return this.headLength + payloadLength + TAG_LENGTH
  }

  openInPlace(aad: Uint8Array, sealed: Buffer): Buffer {
    if (!openAesGcmInPlace(this.encKey, sealed, aad)) throw failed()
    return sealed.subarray(1 + SALT_LENGTH, sealed.length - TAG_LENGTH)
  }

  /**
   * A copy opened in place by the native addon when it loads, without node:crypto's cipher and HMAC objects:
   * 7.3 against 12.7 µs for a 2.4 KB blob, which the mount pays on its main thread for each small file of a
   * directory it loads ahead (bench/RESULTS.md, session 15). Else node:crypto.
   */
  open(aad: Uint8Array, sealed: Uint8Array): Buffer {
    checkScheme(sealed, GCM, this.overhead)
    if ((this.inPlace ??= nativeHelperLoads())) return this.openInPlace(aad, Buffer.from(sealed))
    const salt = sealed.subarray(1, 1 + SALT_LENGTH)
    const tagAt = sealed.length - TAG_LENGTH
    const decipher = createDecipheriv('aes-256-gcm', deriveObjectKey(this.encKey, salt), ZERO_IV, { authTagLength: TAG_LENGTH })
    decipher.setAAD(sealed.subarray(0, 1))
    decipher.setAAD(aad)
    decipher.setAuthTag(sealed.subarray(tagAt))
    const plain = decipher.update(sealed.subarray(1 + SALT_LENGTH, tagAt))
    try {
      decipher.final()
    } catch {
      throw failed()
    }
    return plain
  }
}

/** Shared by the two cleartext schemes: 0x0N | plain | tag[16], tag computed by `tag()`. */
abstract class ClearSealer implements Sealer {
  readonly overhead = 1 + TAG_LENGTH
  readonly headLength = 1
  protected abstract readonly scheme: number
  protected abstract tag(aad: Uint8Array, plain: Uint8Array): Buffer

  seal(aad: Uint8Array, plain: Uint8Array): Buffer {
    return Buffer.concat([Buffer.of(this.scheme), plain, this.tag(aad, plain).subarray(0, TAG_LENGTH)])
  }

  sealInPlace(aad: Uint8Array, buf: Buffer, payloadLength: number): number {
    buf[0] = this.scheme
    const end = this.headLength + payloadLength
    this.tag(aad, buf.subarray(this.headLength, end)).copy(buf, end, 0, TAG_LENGTH)
    return end + TAG_LENGTH
  }

  openInPlace(aad: Uint8Array, sealed: Buffer): Buffer {
    return this.open(aad, sealed)
  }

  open(aad: Uint8Array, sealed: Uint8Array): Buffer {
    checkScheme(sealed, this.scheme, this.overhead)
    const tagAt = sealed.length - TAG_LENGTH
    const plain = sealed.subarray(1, tagAt)
    const expected = this.tag(aad, plain).subarray(0, TAG_LENGTH)
    if (!timingSafeEqual(expected, sealed.subarray(tagAt))) throw failed()
    return Buffer.from(plain.buffer, plain.byteOffset, plain.length)
  }
}

function lengthOf(aad: Uint8Array): Buffer {
  const b = Buffer.allocUnsafe(4)
  b.writeUInt32BE(aad.length)
  return b
}

class HmacSealer extends ClearSealer {
  protected readonly scheme = HMAC
  constructor(private readonly key: Buffer) {
    super()
  }
  protected tag(aad: Uint8Array, plain: Uint8Array): Buffer {
    return createHmac('sha256', this.key).update(AUTH_DOMAIN).update(lengthOf(aad)).update(aad).update(plain).digest()
  }
}

class ChecksumSealer extends ClearSealer {
  protected readonly scheme = CHECKSUM
  protected tag(aad: Uint8Array, plain: Uint8Array): Buffer {
    return createHash('sha256').update(NONE_DOMAIN).update(lengthOf(aad)).update(aad).update(plain).digest()
  }
}
