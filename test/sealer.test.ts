/**
 * Sealed objects: round trips, tamper detection, aad binding, fresh salts,
 * and the byte layouts written in sealer.ts rebuilt here by hand.
 */
import t from 'tap'
import { createCipheriv, createHash, createHmac, randomBytes } from 'node:crypto'
import { deriveObjectKey, makeSealer } from '../lib/crypto/sealer.js'
import { generateKeyMaterial } from '../lib/crypto/key-material.js'
import type { EncryptionMode } from '../lib/crypto/modes.js'

const MODES: EncryptionMode[] = ['repokey', 'keyfile', 'authenticated', 'none']
const km = generateKeyMaterial()
const AAD = Buffer.from('chunk:0123456789abcdef')

t.test('round trips at several sizes', async (t) => {
  for (const mode of MODES) {
    const sealer = makeSealer(mode, km)
    for (const size of [0, 1, 15, 16, 17, 1000, 1024 * 1024 + 3]) {
      const plain = randomBytes(size)
      const sealed = sealer.seal(AAD, plain)
      t.equal(sealed.length, size + sealer.overhead, `${mode} ${size}: length`)
      t.same(sealer.open(AAD, sealed), plain, `${mode} ${size}: round trip`)
    }
  }
})

t.test('sealInPlace seals around a payload in place, and the result opens like seal()', async (t) => {
  for (const mode of MODES) {
    const sealer = makeSealer(mode, km)
    const plain = randomBytes(40 * 1024 + 3)
    const buf = Buffer.alloc(sealer.headLength + plain.length + sealer.overhead + 100, 0xaa)
    plain.copy(buf, sealer.headLength)
    const length = sealer.sealInPlace(AAD, buf, plain.length)
    t.equal(length, plain.length + sealer.overhead, `${mode}: length`)
    t.equal(buf[length], 0xaa, `${mode}: nothing written past the sealed object`)
    t.same(sealer.open(AAD, buf.subarray(0, length)), plain, `${mode}: opens to the payload it was given`)
    if (mode !== 'none' && mode !== 'authenticated') t.not(buf.subarray(sealer.headLength, sealer.headLength + 64).equals(plain.subarray(0, 64)), true, `${mode}: the payload was encrypted`)
    t.throws(() => sealer.open(Buffer.from('another aad'), buf.subarray(0, length)), { code: 'integrity' }, `${mode}: bound to its aad`)
    const shared = Buffer.from(new SharedArrayBuffer(buf.length))
    plain.copy(shared, sealer.headLength)
    const sharedLength = sealer.sealInPlace(AAD, shared, plain.length)
    t.same(sealer.open(AAD, shared.subarray(0, sharedLength)), plain, `${mode}: works in shared memory too (the pipeline's rings)`)
  }
})

t.test('openInPlace gives the plaintext as a view of the sealed bytes, and refuses what open() refuses', async (t) => {
  for (const mode of MODES) {
    const sealer = makeSealer(mode, km)
    const plain = randomBytes(70 * 1024 + 5)
    const sealed = sealer.seal(AAD, plain)
    const opened = sealer.openInPlace(AAD, Buffer.from(sealed))
    t.same(opened, plain, `${mode}: opens`)
    const own = Buffer.from(sealed)
    t.equal(sealer.openInPlace(AAD, own).buffer, own.buffer, `${mode}: a view of the buffer it was given`)
    const flipped = Buffer.from(sealed)
    flipped[flipped.length >> 1] ^= 0x10
    t.throws(() => sealer.openInPlace(AAD, flipped), { code: 'integrity' }, `${mode}: a flipped bit is refused`)
    t.throws(() => sealer.openInPlace(Buffer.from('other'), Buffer.from(sealed)), { code: 'integrity' }, `${mode}: another aad is refused`)
    t.throws(() => sealer.openInPlace(AAD, Buffer.from(sealed.subarray(0, 20))), { code: 'integrity' }, `${mode}: a truncated object is refused`)
  }
})

t.test('a flipped bit anywhere fails to open with code integrity', async (t) => {
  const plain = Buffer.from('a small tree object, fifty bytes long or about so.')
  for (const mode of MODES) {
    const sealer = makeSealer(mode, km)
    const sealed = sealer.seal(AAD, plain)
    let refused = 0
    for (let bit = 0; bit < sealed.length * 8; bit++) {
      const bad = Buffer.from(sealed)
      bad[bit >> 3] ^= 1 << (bit & 7)
      try {
        sealer.open(AAD, bad)
      } catch (err) {
        if ((err as { code?: string }).code === 'integrity') refused++
      }
    }
    t.equal(refused, sealed.length * 8, `${mode}: all ${sealed.length * 8} bit flips refused`)
    t.throws(() => sealer.open(AAD, sealed.subarray(0, sealed.length - 1)), { code: 'integrity' }, `${mode}: truncated`)
    t.throws(() => sealer.open(AAD, Buffer.concat([sealed, Buffer.alloc(1)])), { code: 'integrity' }, `${mode}: extended`)
    t.throws(() => sealer.open(AAD, sealed.subarray(0, 5)), { code: 'integrity' }, `${mode}: shorter than the overhead`)
  }
})

t.test('the aad is authenticated', async (t) => {
  for (const mode of MODES) {
    const sealer = makeSealer(mode, km)
    const sealed = sealer.seal(AAD, Buffer.from('payload'))
    t.throws(() => sealer.open(Buffer.from('chunk:0123456789abcdeF'), sealed), { code: 'integrity' }, mode)
    t.throws(() => sealer.open(Buffer.alloc(0), sealed), { code: 'integrity' }, `${mode}: empty aad`)
  }
})

t.test('a sealer opens only its own scheme, and only with its key', async (t) => {
  const plain = Buffer.from('payload')
  for (const a of MODES) {
    for (const b of MODES) {
      const sameScheme = a === b || (a !== 'none' && a !== 'authenticated' && b !== 'none' && b !== 'authenticated')
      if (sameScheme) continue
      t.throws(() => makeSealer(b, km).open(AAD, makeSealer(a, km).seal(AAD, plain)), { code: 'integrity' }, `${a} → ${b}`)
    }
  }
  for (const mode of ['repokey', 'authenticated'] as const) {
    const sealed = makeSealer(mode, km).seal(AAD, plain)
    t.throws(() => makeSealer(mode, generateKeyMaterial()).open(AAD, sealed), { code: 'integrity' }, `${mode}: other key`)
  }
  t.throws(() => makeSealer('repokey', null), TypeError)
})

t.test('two seals of the same plaintext differ (encrypted modes)', async (t) => {
  const sealer = makeSealer('repokey', km)
  const plain = Buffer.alloc(64, 7)
  const a = sealer.seal(AAD, plain)
  const b = sealer.seal(AAD, plain)
  t.notSame(a, b)
  t.notSame(a.subarray(1, 25), b.subarray(1, 25), 'fresh salt')
  t.equal(a.indexOf(plain), -1, 'no plaintext in the output')
})

t.test('salts stay distinct across the bulk draws they come from', async (t) => {
  const sealer = makeSealer('repokey', km)
  const seen = new Set<string>()
  for (let i = 0; i < 3000; i++) seen.add(sealer.seal(AAD, Buffer.from('x')).subarray(1, 25).toString('hex'))
  t.equal(seen.size, 3000, 'no salt repeats over about three draws of 1,024')
})

t.test('subkey derivation: HMAC-SHA256(encKey, "cairn-obj" || salt)', async (t) => {
  // python3 -c "import sys; sys.stdout.buffer.write(b'cairn-obj'+bytes(range(32,56)))" |
  //   openssl dgst -sha256 -mac HMAC -macopt hexkey:000102…1f
  const key = deriveObjectKey(Buffer.from(Array.from({ length: 32 }, (_, i) => i)), Buffer.from(Array.from({ length: 24 }, (_, i) => 32 + i)))
  t.equal(key.toString('hex'), '7518f6d29fa96daff835f51645c3cc275e8b77c6d4ab6fcbb87cf01a2e449d89')
})

t.test('objects built by hand from the documented layouts open', async (t) => {
  const plain = Buffer.from('built from the layout in sealer.ts')
  const aadLen = Buffer.alloc(4)
  aadLen.writeUInt32BE(AAD.length)

  const salt = randomBytes(24)
  const cipher = createCipheriv('aes-256-gcm', deriveObjectKey(km.encKey, salt), Buffer.alloc(12))
  cipher.setAAD(Buffer.concat([Buffer.of(0x01), AAD]))
  const gcm = Buffer.concat([Buffer.of(0x01), salt, cipher.update(plain), cipher.final(), cipher.getAuthTag()])
  t.same(makeSealer('repokey', km).open(AAD, gcm), plain, 'repokey')

  const tag = createHmac('sha256', km.encKey).update('cairn-auth').update(aadLen).update(AAD).update(plain).digest().subarray(0, 16)
  t.same(makeSealer('authenticated', km).open(AAD, Buffer.concat([Buffer.of(0x02), plain, tag])), plain, 'authenticated')

  const sum = createHash('sha256').update('cairn-none').update(aadLen).update(AAD).update(plain).digest().subarray(0, 16)
  t.same(makeSealer('none', null).open(AAD, Buffer.concat([Buffer.of(0x03), plain, sum])), plain, 'none')
})
