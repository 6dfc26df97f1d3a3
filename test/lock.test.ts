/** The repository lock: held locks stop other writers, stale ones are broken. */
import t from 'tap'
import { spawn } from 'node:child_process'
import { promises as fs } from 'node:fs'
import { hostname } from 'node:os'
import * as path from 'node:path'
import { cairn, scratch, testEnv } from './helpers/cli.js'

async function setup() {
  const repo = path.join(scratch(), 'repo')
  const env = testEnv()
  await cairn(['init', repo], { env })
  const src = scratch()
  await fs.writeFile(path.join(src, 'f'), 'data')
  return { repo, env, src }
}

t.test('a lock held by a live process stops a commit with a clear message', async (t) => {
  const { repo, env, src } = await setup()
  const holder = spawn('sleep', ['60'])
  t.teardown(() => holder.kill())
  await fs.mkdir(path.join(repo, 'locks'), { recursive: true })
  await fs.writeFile(path.join(repo, 'locks/exclusive'), JSON.stringify({ host: hostname(), pid: holder.pid, time: new Date().toISOString() }))
  const r = await cairn(['delete', `${repo}::nothing`], { env, timeoutMs: 60_000 })
  t.equal(r.code, 2)
  t.match(r.stderr, /locked by process \d+ on .*break-lock/)
  const list = await cairn(['list', repo], { env })
  t.equal(list.code, 0, 'readers need no lock')
  t.equal((await cairn(['break-lock', repo], { env })).code, 0)
  t.equal((await cairn(['create', `${repo}::after`, src], { env })).code, 0, 'a broken lock no longer blocks')
})

t.test('a lock left by a dead process of this host is broken automatically', async (t) => {
  const { repo, env, src } = await setup()
  const dead = spawn('true')
  await new Promise((r) => dead.on('close', r))
  await fs.mkdir(path.join(repo, 'locks'), { recursive: true })
  await fs.writeFile(path.join(repo, 'locks/exclusive'), JSON.stringify({ host: hostname(), pid: dead.pid, time: new Date().toISOString() }))
  const r = await cairn(['create', `${repo}::x`, src], { env })
  t.equal(r.code, 0, r.stderr)
})

t.test('two backups into one repository at the same time both land', async (t) => {
  const { repo, env, src } = await setup()
  const results = await Promise.all(['p1', 'p2', 'p3'].map((n) => cairn(['create', `${repo}::${n}`, src], { env })))
  t.same(results.map((r) => r.code), [0, 0, 0], results.map((r) => r.stderr).join(''))
  const list = await cairn(['list', '--short', repo], { env })
  t.same(list.stdout.toString().trim().split('\n').sort(), ['p1', 'p2', 'p3'])
})
