/**
 * The small benchmark corpus (shared/bench/make-corpus.py --profile small),
 * made once per machine and reused: deterministic for a seed, so every test
 * sees the same tree. CAIRN_TEST_CORPUS names a ready-made one.
 */
import { execFile } from 'node:child_process'
import { existsSync, promises as fs } from 'node:fs'
import { tmpdir } from 'node:os'
import * as path from 'node:path'
import { promisify } from 'node:util'
import { ROOT } from './cli.js'

const run = promisify(execFile)
export const MAKE_CORPUS = path.resolve(ROOT, '../shared/bench/make-corpus.py')

export async function smallCorpus(): Promise<string> {
  const given = process.env.CAIRN_TEST_CORPUS
  if (given) return given
  const dir = path.join(tmpdir(), 'cairn-corpus-small-seed1')
  if (existsSync(path.join(dir, '.complete'))) return dir
  const temp = `${dir}.${process.pid}`
  await fs.rm(temp, { recursive: true, force: true })
  await run('python3', [MAKE_CORPUS, temp, '--profile', 'small', '--seed', '1'], { maxBuffer: 64 * 1024 * 1024 })
  await fs.writeFile(path.join(temp, '.complete'), '')
  await fs.rename(temp, dir).catch(async () => fs.rm(temp, { recursive: true, force: true }))
  return dir
}
