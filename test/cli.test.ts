/** The command line as a user meets it: options, placeholders, stdin, JSON, exit codes. */
import t from 'tap'
import { execFile } from 'node:child_process'
import { promises as fs } from 'node:fs'
import { hostname } from 'node:os'
import * as path from 'node:path'
import { promisify } from 'node:util'
import { CLI, ROOT, cairn, scratch, testEnv } from './helpers/cli.js'

const run = promisify(execFile)

async function setup() {
  const repo = path.join(scratch(), 'repo')
  const env = testEnv()
  const init = await cairn(['init', repo], { env })
  if (init.code !== 0) throw new Error(init.stderr)
  const src = scratch()
  await fs.mkdir(path.join(src, 'keep'))
  await fs.mkdir(path.join(src, 'cache'))
  await fs.writeFile(path.join(src, 'keep', 'a.txt'), 'a')
  await fs.writeFile(path.join(src, 'keep', 'b.log'), 'b')
  await fs.writeFile(path.join(src, 'cache', 'junk'), 'junk')
  return { repo, env, src }
}

t.test('help, version and unknown commands', async (t) => {
  const help = await cairn(['--help'])
  t.equal(help.code, 0)
  t.match(help.stdout.toString(), /create.*\n.*/)
  t.equal((await cairn(['create', '--help'])).code, 0)
  const bad = await cairn(['frobnicate'])
  t.equal(bad.code, 2)
  t.match(bad.stderr, /unknown command/)
  const badOption = await cairn(['list', '--no-such-option', 'x'])
  t.equal(badOption.code, 2)
  t.equal(badOption.stderr.trim().split('\n').length, 1)
})

t.test('the installed command (cli/cairn, reached through a symlink as npm links it) starts node with a small young generation', async (t) => {
  const bin = path.join(scratch(), 'cairn')
  await fs.symlink(path.join(ROOT, 'cli/cairn'), bin)
  // A module node loads first, that tells how node was started.
  const probe = path.join(scratch(), 'probe.mjs')
  await fs.writeFile(probe, "process.stderr.write('execArgv=' + JSON.stringify(process.execArgv) + '\\n')\n")
  const env = { ...process.env, NODE_OPTIONS: `--import=${probe}` }
  const version = await run(bin, ['--version'], { env })
  t.match(version.stdout, /^cairn \d+\.\d+\.\d+/)
  t.match(version.stderr, /execArgv=\["--max-semi-space-size=4"\]/)
  const failed = await run(bin, ['list', path.join(scratch(), 'nothing-here')], { env }).catch((err: { code: number; stderr: string }) => err)
  t.equal((failed as { code: number }).code, 2, 'the exit code comes through')
  t.match((failed as { stderr: string }).stderr, /is not a cairn repository/)
})

t.test('placeholders, excludes, list and info in text and JSON', async (t) => {
  const { repo, env, src } = await setup()
  const r = await cairn(['create', '--exclude', 'cache', '--exclude', '*.log', `${repo}::{hostname}-{now}`, '.'], { env, cwd: src })
  t.equal(r.code, 0, r.stderr)
  const archives = JSON.parse((await cairn(['list', '--json', repo], { env })).stdout.toString()).archives
  t.equal(archives.length, 1)
  t.match(archives[0].name, new RegExp(`^${hostname().split('.')[0]}-\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d$`))
  const items = (await cairn(['list', '--json-lines', `${repo}::${archives[0].name}`], { env })).stdout.toString().trim().split('\n').map((l) => JSON.parse(l))
  t.same(items.map((i) => i.path).sort(), ['keep', 'keep/a.txt'], 'excluded paths are not in the archive')
  t.equal(items.find((i) => i.path === 'keep/a.txt').size, 1)
  const ls = (await cairn(['list', `${repo}::${archives[0].name}`], { env })).stdout.toString()
  t.match(ls, /^-rw-r--r-- .* 1 .* keep\/a\.txt$/m, 'ls -l style listing')
  const info = JSON.parse((await cairn(['info', '--json', `${repo}::${archives[0].name}`], { env })).stdout.toString())
  t.equal(info.archives[0].stats.nfiles, 1)
  t.ok(info.archives[0].stats.original_size >= 1)
  t.equal(info.repository.encryption, 'repokey')
  const text = (await cairn(['info', repo], { env })).stdout.toString()
  t.match(text, /All archives:/)
})

t.test('stdin into one file, and the archive restores it', async (t) => {
  const { repo, env } = await setup()
  const payload = Buffer.alloc(3 * 1024 * 1024, 'stream data ')
  const r = await cairn(['create', '--stdin-name', 'dump.sql', `${repo}::s`, '-'], { env, input: payload })
  t.equal(r.code, 0, r.stderr)
  const dest = scratch()
  t.equal((await cairn(['extract', `${repo}::s`], { env, cwd: dest })).code, 0)
  t.ok((await fs.readFile(path.join(dest, 'dump.sql'))).equals(payload))
})

t.test('dry runs change nothing', async (t) => {
  const { repo, env, src } = await setup()
  const before = await run('du', ['-sb', repo])
  t.equal((await cairn(['create', '--dry-run', `${repo}::d`, src], { env })).code, 0)
  t.equal((await cairn(['list', '--short', repo], { env })).stdout.toString(), '', 'no archive made')
  t.equal((await run('du', ['-sb', repo])).stdout.split('\t')[0], before.stdout.split('\t')[0], 'no bytes written')
  await cairn(['create', `${repo}::real`, '.'], { env, cwd: src })
  const dest = scratch()
  const listed = await cairn(['extract', '--dry-run', `${repo}::real`], { env, cwd: dest })
  t.match(listed.stdout.toString(), /keep\/a\.txt/)
  t.same(await fs.readdir(dest), [], 'extract --dry-run writes nothing')
})

t.test('extract selected paths with --strip-components, and sparse files', async (t) => {
  const { repo, env, src } = await setup()
  const sparse = await fs.open(path.join(src, 'keep', 'sparse.img'), 'w')
  await sparse.write(Buffer.from('head'), 0, 4, 0)
  await sparse.write(Buffer.from('tail'), 0, 4, 48 * 1024 * 1024)
  await sparse.close()
  t.equal((await cairn(['create', `${repo}::x`, '.'], { env, cwd: src })).code, 0)
  const dest = scratch()
  const r = await cairn(['extract', '--sparse', '--strip-components', '1', `${repo}::x`, 'keep'], { env, cwd: dest })
  t.equal(r.code, 0, r.stderr)
  t.same((await fs.readdir(dest)).sort(), ['a.txt', 'b.log', 'sparse.img'])
  const st = await fs.stat(path.join(dest, 'sparse.img'))
  t.equal(st.size, 48 * 1024 * 1024 + 4)
  t.ok(st.blocks * 512 < 16 * 1024 * 1024, `zero chunks became holes (${st.blocks} blocks)`)
  const data = await fs.readFile(path.join(dest, 'sparse.img'))
  t.equal(data.subarray(0, 4).toString(), 'head')
  t.equal(data.subarray(data.length - 4).toString(), 'tail')
})

t.test('delete removes an archive from the list', async (t) => {
  const { repo, env, src } = await setup()
  await cairn(['create', `${repo}::one`, src], { env })
  await cairn(['create', `${repo}::two`, src], { env })
  t.equal((await cairn(['delete', `${repo}::one`], { env })).code, 0)
  t.equal((await cairn(['list', '--short', repo], { env })).stdout.toString(), 'two\n')
  const again = await cairn(['delete', `${repo}::one`], { env })
  t.equal(again.code, 2)
  t.match(again.stderr, /no archive named/)
})

t.test('CAIRN_REPO stands in for REPO and ::ARCHIVE', async (t) => {
  const { repo, env, src } = await setup()
  const withRepo = { ...env, CAIRN_REPO: repo }
  t.equal((await cairn(['create', '::viaenv', src], { env: withRepo })).code, 0)
  t.equal((await cairn(['list', '--short'], { env: withRepo })).stdout.toString(), 'viaenv\n')
})

t.test('a file that cannot be read is a warning (exit 1), the rest is backed up', async (t) => {
  const { repo, env, src } = await setup()
  await fs.chmod(path.join(src, 'keep', 'a.txt'), 0)
  // As root every file is readable: run cairn as nobody, with the test's
  // directories opened up to it.
  const asRoot = process.getuid?.() === 0
  if (asRoot) for (const dir of [path.dirname(repo), repo, src, env.HOME!]) await run('chmod', ['-R', 'a+rwX', dir])
  if (asRoot) await fs.chmod(path.join(src, 'keep', 'a.txt'), 0)
  const r = asRoot
    ? await run('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, CLI, 'create', `${repo}::w`, src], { env: env as NodeJS.ProcessEnv }).then(
        () => ({ code: 0, stderr: '' }),
        (e: { code: number; stderr: string }) => ({ code: e.code, stderr: e.stderr }),
      )
    : await cairn(['create', `${repo}::w`, src], { env })
  t.equal(r.code, 1, r.stderr)
  t.match(r.stderr, /a\.txt: cannot be read/)
  const items = (await cairn(['list', '--short', `${repo}::w`], { env })).stdout.toString()
  t.match(items, /keep\/b\.log/, 'the other files are in the archive')
  t.notMatch(items, /a\.txt/, 'the unreadable one is not')
})
