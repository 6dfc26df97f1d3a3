/**
 * The promise of a backup tool: what goes in comes back out, byte for byte,
 * with every name, link, mode, time and extended attribute.
 */
import t from 'tap'
import { execFile } from 'node:child_process'
import { promises as fs } from 'node:fs'
import * as path from 'node:path'
import { promisify } from 'node:util'
import { cairn, scratch, testEnv } from './helpers/cli.js'
import { smallCorpus } from './helpers/corpus.js'
import { compareTrees } from './helpers/tree-compare.js'
import { mknod, setXattr, setTimes } from '../dist/lib/native/posix.js'

const run = promisify(execFile)

t.test('small corpus round-trips through create and extract', async (t) => {
  const corpus = await smallCorpus()
  // A copy we can add to: xattrs (binary and ACL), a fifo, a pre-1970 mtime.
  const source = path.join(scratch(), 'src')
  await run('cp', ['-a', corpus, source])
  await fs.rm(path.join(source, '.complete'), { force: true })
  const extraDir = Buffer.from(path.join(source, 'extra-\xe9-dir'), 'latin1')
  await fs.mkdir(extraDir)
  const withXattr = path.join(source, 'attrs')
  await fs.writeFile(withXattr, 'has xattrs')
  await setXattr(Buffer.from(withXattr), Buffer.from('user.binary'), Buffer.from([0, 1, 2, 255, 0]))
  await setXattr(Buffer.from(withXattr), Buffer.from('user.caf\xe9', 'latin1'), Buffer.from('latin1 name'))
  await run('setfacl', ['-m', 'u:nobody:r', withXattr])
  await mknod(Buffer.concat([extraDir, Buffer.from('/pipe')]), 0o010644)
  const old = Buffer.concat([extraDir, Buffer.from('/from-1960')])
  await fs.writeFile(old, 'old')
  await setTimes(old, -315619200123456789n, -315619200987654321n)
  await setTimes(extraDir, 1_600_000_000_111_111_111n, 1_600_000_000_222_222_222n)

  const repo = path.join(scratch(), 'repo')
  const env = testEnv()
  t.equal((await cairn(['init', '--encryption', 'repokey', repo], { env })).code, 0, 'init')
  const created = await cairn(['create', '--json', `${repo}::first`, '.'], { env, cwd: source })
  t.equal(created.code, 0, `create exits 0: ${created.stderr}`)
  const stats = JSON.parse(created.stdout.toString()).archive.stats
  t.ok(stats.nfiles > 9000, 'all files counted')

  const dest = scratch('cairn-restore-')
  const extracted = await cairn(['extract', `${repo}::first`], { env, cwd: dest })
  t.equal(extracted.code, 0, `extract exits 0: ${extracted.stderr}`)
  const diffs = await compareTrees(source, dest, { owners: true })
  t.same(diffs.slice(0, 20), [], 'restored tree equals the source')

  // Names the corpus promises are really there, as bytes.
  const names: Buffer[] = []
  const walk = async (dir: Buffer): Promise<void> => {
    for (const e of await fs.readdir(dir, { encoding: 'buffer', withFileTypes: true })) {
      names.push(e.name)
      if (e.isDirectory()) await walk(Buffer.concat([dir, Buffer.from('/'), e.name]))
    }
  }
  await walk(Buffer.from(dest))
  t.ok(names.some((n) => !Buffer.from(n.toString('utf8')).equals(n)), 'a non-UTF-8 name came back')
  t.ok(names.some((n) => n.includes(0x0a)), 'a name with a newline came back')
})
