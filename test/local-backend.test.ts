/**
 * The local-directory backend: objects appear whole or not at all, and a
 * piecewise upload (how packs are written) leaves nothing behind when given up.
 */
import t from 'tap'
import { mkdtempSync, readdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import * as path from 'node:path'
import { LocalBackend } from '../lib/storage/local.js'

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath ?? e.path, e.name)))
    .sort()
}

t.test('an upload is invisible until finished, then reads back in order', async (t) => {
  const root = mkdtempSync(path.join(tmpdir(), 'cairn-backend-'))
  t.teardown(() => import('node:fs/promises').then((fs) => fs.rm(root, { recursive: true, force: true })))
  const backend = new LocalBackend(root)
  const upload = backend.upload('data/ab/pack1')
  await upload.append([Buffer.from('one '), Buffer.from('two ')])
  await upload.append([Buffer.from('three')])
  t.equal(await backend.stat('data/ab/pack1'), null, 'not visible before finish')
  const listed = []
  for await (const info of backend.list('data/')) listed.push(info.key)
  t.same(listed, [], 'the temporary file is not listed')
  await upload.finish()
  t.equal((await backend.get('data/ab/pack1')).toString(), 'one two three')
  t.equal((await backend.getRange('data/ab/pack1', 4, 3)).toString(), 'two')
  t.same(filesUnder(root), ['data/ab/pack1'], 'no temporary file left')
})

t.test('an aborted upload leaves no file, and put of parts is whole', async (t) => {
  const root = mkdtempSync(path.join(tmpdir(), 'cairn-backend-'))
  t.teardown(() => import('node:fs/promises').then((fs) => fs.rm(root, { recursive: true, force: true })))
  const backend = new LocalBackend(root)
  const upload = backend.upload('data/cd/pack2')
  await upload.append([Buffer.alloc(100_000, 7)])
  await upload.abort()
  t.same(filesUnder(root), [], 'nothing under the key, no temporary file')
  await backend.put('data/cd/pack3', [Buffer.from('a'), Buffer.alloc(0), Buffer.from('bc')])
  t.equal((await backend.get('data/cd/pack3')).toString(), 'abc')
  const empty = backend.upload('data/cd/empty')
  await empty.finish()
  t.equal((await backend.get('data/cd/empty')).length, 0, 'an upload with no appends makes an empty object')
})
