/** Packs keep data apart from metadata, so that a reader walking an archive's trees reads a small part of the repository. */
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { promises as fs } from 'node:fs'
import * as path from 'node:path'
import { cairn, scratch, testEnv } from './helpers/cli.js'
import { decodePackHeader } from '../dist/lib/repo/pack-format.js'
import { makeSealer } from '../dist/lib/crypto/sealer.js'

const DATA = 0

t.test('no pack mixes file data with trees or archives', async (t) => {
  const src = scratch()
  for (let d = 0; d < 20; d++) {
    await fs.mkdir(path.join(src, `dir${d}`))
    for (let f = 0; f < 10; f++) await fs.writeFile(path.join(src, `dir${d}`, `file${f}`), randomBytes(5_000 + d * 100 + f))
  }
  const repo = path.join(scratch(), 'repo')
  const env = testEnv()
  await cairn(['init', '-e', 'none', repo], { env })
  const created = await cairn(['create', `${repo}::a`, src], { env })
  t.equal(created.code, 0, created.stderr.toString())
  const sealer = makeSealer('none', null)
  const kinds = { data: 0, metadata: 0, mixed: 0 }
  for (const entry of await fs.readdir(path.join(repo, 'data'), { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue
    const file = path.join(entry.parentPath ?? entry.path, entry.name)
    const types = new Set(decodePackHeader(await fs.readFile(file), sealer, entry.name).map((b) => (b.type === DATA ? 'data' : 'metadata')))
    kinds[types.size > 1 ? 'mixed' : types.has('data') ? 'data' : 'metadata']++
  }
  t.same(kinds.mixed, 0, 'no pack holds both')
  t.ok(kinds.data >= 1 && kinds.metadata >= 1, `data packs ${kinds.data}, metadata packs ${kinds.metadata}`)
})
