/**
 * Passphrase-sealed key material: round trips, wrong passphrase, repository
 * binding, damaged and hostile envelopes, and the KDF's parameters.
 */
import t from 'tap'
import { openKeyMaterial, sealKeyMaterial } from '../lib/crypto/key-envelope.js'
import { DEFAULT_KDF_PARAMS, deriveKey, type KdfParams } from '../lib/crypto/kdf.js'
import { decodeKeyMaterial, encodeKeyMaterial, generateKeyMaterial } from '../lib/crypto/key-material.js'
import { pack, unpack } from '../lib/encoding/msgpack.js'

const FAST: Partial<KdfParams> = { N: 2 ** 10 }
const km = generateKeyMaterial()
const REPO = 'c0ffee00c0ffee00c0ffee00c0ffee00'

function edit(envelope: Buffer, change: (e: Record<string, any>) => void): Buffer {
  const e = unpack(envelope) as Record<string, any>
  change(e)
  return pack(e)
}

t.test('key material encodes and decodes', async (t) => {
  t.same(decodeKeyMaterial(encodeKeyMaterial(km)), km)
  for (const k of [km.encKey, km.macKey, km.chunkerSeed]) t.equal(k.length, 32)
  t.notSame(generateKeyMaterial().encKey, km.encKey)
  for (const bad of [Buffer.alloc(0), Buffer.from('garbage'), pack({ v: 1, enc: km.encKey, mac: km.macKey }), pack({ v: 1, enc: Buffer.alloc(31), mac: km.macKey, seed: km.chunkerSeed })]) {
    t.throws(() => decodeKeyMaterial(bad), { code: 'integrity' })
  }
})

t.test('round trip, with the parameters stored in the envelope', async (t) => {
  const envelope = await sealKeyMaterial(km, 'correct horse battery staple', REPO, FAST)
  t.same(await openKeyMaterial(envelope, 'correct horse battery staple', REPO), km)
  const e = unpack(envelope) as Record<string, any>
  t.same({ v: e.v, repo: e.repo, alg: e.kdf.alg, N: e.kdf.N, r: e.kdf.r, p: e.kdf.p }, { v: 1, repo: REPO, alg: 'scrypt', N: 1024, r: 8, p: 3 })
  t.equal(e.kdf.salt.length, 32)
  const again = unpack(await sealKeyMaterial(km, 'correct horse battery staple', REPO, FAST)) as Record<string, any>
  t.notSame(again.kdf.salt, e.kdf.salt, 'fresh salt per seal')
  t.notSame(again.sealed, e.sealed)
})

t.test('wrong passphrase', async (t) => {
  const envelope = await sealKeyMaterial(km, 'right', REPO, FAST)
  await t.rejects(openKeyMaterial(envelope, 'wrong', REPO), {
    code: 'wrong-passphrase',
    message: 'wrong passphrase for this repository',
    hint: 'check CAIRN_PASSPHRASE / CAIRN_PASSCOMMAND',
  })
  await t.rejects(openKeyMaterial(envelope, '', REPO), { code: 'wrong-passphrase' })
})

t.test('passphrases are compared after NFC normalization', async (t) => {
  const envelope = await sealKeyMaterial(km, 'caf\u00e9', REPO, FAST)
  t.same(await openKeyMaterial(envelope, 'cafe\u0301', REPO), km)
})

t.test('an envelope is bound to its repository and parameters', async (t) => {
  const envelope = await sealKeyMaterial(km, 'pw', REPO, FAST)
  await t.rejects(openKeyMaterial(envelope, 'pw', 'another-repository'), { code: 'bad-config' })
  // Rewriting the id (and the checksum, which anyone can) does not help: the id is in the AAD.
  const moved = edit(envelope, (e) => (e.repo = 'another-repository'))
  await t.rejects(openKeyMaterial(moved, 'pw', 'another-repository'), { code: 'integrity' }, 'checksum catches the edit')
  const r16 = edit(envelope, (e) => (e.kdf.r = 16))
  await t.rejects(openKeyMaterial(r16, 'pw', REPO), { code: 'integrity' }, 'parameter edit caught')
})

t.test('damaged and hostile envelopes give integrity, never a key', async (t) => {
  const envelope = await sealKeyMaterial(km, 'pw', REPO, FAST)
  const cases: [string, Buffer][] = [
    ['empty', Buffer.alloc(0)],
    ['garbage', Buffer.from('not an envelope at all')],
    ['truncated', envelope.subarray(0, envelope.length - 10)],
    ['not a map', pack([1, 2, 3])],
    ['no kdf', edit(envelope, (e) => delete e.kdf)],
    ['unknown kdf', edit(envelope, (e) => (e.kdf.alg = 'argon2id'))],
    ['huge N', edit(envelope, (e) => (e.kdf.N = 2 ** 30))],
    ['N not a power of two', edit(envelope, (e) => (e.kdf.N = 1000))],
    ['short salt', edit(envelope, (e) => (e.kdf.salt = Buffer.alloc(8)))],
    ['short iv', edit(envelope, (e) => (e.iv = Buffer.alloc(8)))],
    ['sealed too short', edit(envelope, (e) => (e.sealed = Buffer.alloc(16)))],
    ['repo not a string', edit(envelope, (e) => (e.repo = 7))],
  ]
  for (let i = 0; i < 8; i++) {
    cases.push([`bit ${i} of sealed flipped`, edit(envelope, (e) => (e.sealed[(i * 13) % e.sealed.length] ^= 1 << i))])
  }
  for (const [name, bad] of cases) await t.rejects(openKeyMaterial(bad, 'pw', REPO), { code: 'integrity' }, name)
  await t.rejects(openKeyMaterial(edit(envelope, (e) => (e.v = 2)), 'pw', REPO), { code: 'unsupported-version' })
})

t.test('bad KDF parameters from the caller are refused', async (t) => {
  for (const kdf of [{ N: 3000 }, { N: 2 ** 21 }, { r: 0 }, { p: 17 }, { N: 2 ** 20, r: 16 }]) {
    await t.rejects(sealKeyMaterial(km, 'pw', REPO, kdf), { code: 'bad-argument' }, JSON.stringify(kdf))
  }
})

t.test('default cost is scrypt N=2^15, r=8, p=3, and derivation does not block the event loop', async (t) => {
  t.same(DEFAULT_KDF_PARAMS, { alg: 'scrypt', N: 2 ** 15, r: 8, p: 3 })
  let ticks = 0
  const timer = setInterval(() => ticks++, 5)
  const started = Date.now()
  const envelope = await sealKeyMaterial(km, 'pw', REPO)
  const elapsed = Date.now() - started
  clearInterval(timer)
  t.equal((unpack(envelope) as Record<string, any>).kdf.N, 2 ** 15)
  t.ok(ticks >= Math.floor(elapsed / 5) / 3, `${ticks} timer ticks during ${elapsed} ms of derivation`)
  t.same(await openKeyMaterial(envelope, 'pw', REPO), km)
})

t.test('deriveKey is scrypt (RFC 7914 §12 test vector 2)', async (t) => {
  const key = await deriveKey('password', Buffer.from('NaCl'), { alg: 'scrypt', N: 1024, r: 8, p: 16 })
  // RFC 7914 gives 64 bytes; cairn takes the first 32.
  t.equal(key.toString('hex'), 'fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b373162')
})
