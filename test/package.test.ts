/**
 * What `npm pack` ships: the `cairn` command, typed exports, and every C source and header the two native
 * addons compile, so that an install from the package builds them (content-table.c was missing from it for
 * eleven sessions: the FUSE binding of a packed install did not build).
 */
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'

const packed = (): Set<string> => {
  const r = spawnSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`npm pack failed: ${r.stderr}`)
  return new Set((JSON.parse(r.stdout) as { files: { path: string }[] }[])[0]!.files.map((f) => f.path))
}

/**
 * The addon's own sources (those in its directory) and the headers they include with quotes, recursively,
 * found in its directory or in lib/native (the FUSE binding's include_dirs).
 */
function nativeSources(dir: string): string[] {
  const gyp = readFileSync(`${dir}/binding.gyp`, 'utf8')
  const found = new Set([...gyp.matchAll(/"([\w-]+\.c)"/g)].map((m) => `${dir}/${m[1]!}`))
  for (const file of found) {
    for (const m of readFileSync(file, 'utf8').matchAll(/#include "([\w-]+\.h)"/g)) {
      found.add([dir, 'lib/native'].map((d) => `${d}/${m[1]!}`).find((f) => existsSync(f)) ?? `${dir}/${m[1]!}`)
    }
  }
  return [...found]
}

t.test('the package holds the command, typed exports and every native source', async (t) => {
  const files = packed()
  const manifest = JSON.parse(readFileSync('package.json', 'utf8')) as { bin: Record<string, string>; exports: Record<string, { types: string; import: string }> }
  t.equal(manifest.bin.cairn, 'cli/cairn')
  t.ok(files.has('cli/cairn'), 'the command')
  for (const [name, entry] of Object.entries(manifest.exports)) {
    t.ok(files.has(entry.import.slice(2)) && files.has(entry.types.slice(2)), `export ${name}: code and types`)
  }
  for (const dir of ['lib/native', 'mount/native']) {
    const sources = nativeSources(dir)
    t.ok(sources.length >= 4, `${dir}: ${sources.length} sources and headers`)
    for (const f of sources) if (!files.has(f)) t.fail(`${f} is not in the package`)
  }
})
