#!/usr/bin/env node
/**
 * Patch and rebuild fuse-native 2.2.6 so that cairn's FUSE mount is byte-exact.
 *
 * As shipped, fuse-native converts every path, name, link target and xattr name to a UTF-8 string
 * (a name that is not UTF-8 comes out as U+FFFD and cannot be opened), sends stat times as
 * milliseconds, and truncates inode numbers, modes and link counts to 32 bits. This script rewrites
 * the few places in `node_modules/fuse-native` where that happens, then rebuilds the addon with
 * node-gyp (node-gyp-build loads build/Release before the shipped prebuild). Why each change is sound:
 * native-notes/fuse.md.
 *
 *   node mount/native/patch-fuse-native.mjs            patch and rebuild (idempotent; what postinstall runs)
 *   node mount/native/patch-fuse-native.mjs --check    exit 0 if the patched build is in place and loads
 *   node mount/native/patch-fuse-native.mjs --force    patch and rebuild even if already done
 *   node mount/native/patch-fuse-native.mjs --restore  put back fuse-native's own files and prebuild
 *   add --strict to turn "cannot build here" (no compiler, no node-gyp) from a warning into a failure
 *
 * A missing toolchain or a failed build never fails `npm install` (unless --strict): the script restores
 * fuse-native's own files, prints one line and exits 0; cairn then refuses to mount and says how to fix it.
 * A fuse-native that is not the expected version, or whose source does not match a substitution exactly,
 * fails loudly (exit 1) before anything is written: that is a packaging bug, not a property of the machine.
 *
 * Nothing of fuse-native is copied into cairn: the substitutions below are the whole patch. The original
 * files are kept next to the patched ones as `*.cairn-orig` (inside node_modules) so the patch can be
 * re-applied or undone.
 */
import { createHash } from 'node:crypto'
import { spawn } from 'node:child_process'
import { access, readFile, rm, writeFile, constants } from 'node:fs/promises'
import { createRequire } from 'node:module'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

/** Bump when the substitutions change; mount/fuse-binding.ts checks the same number. */
const PATCH_LEVEL = 1
const FUSE_NATIVE_VERSION = '2.2.6'
const MARK = 'cairn-patch-level-'
const MARKER_FILE = 'cairn-patch.json'

/**
 * One substitution: `find` (a string, matched exactly, or a regular expression with the g flag) must
 * occur exactly `count` times in the pristine file; every occurrence is replaced.
 * @typedef {{ why: string, find: string | RegExp, replace: string, count: number }} Substitution
 */

/** @type {Substitution[]} substitutions in fuse-native.c */
const C_SUBSTITUTIONS = [
  {
    why: 'paths, names, link/rename destinations and xattr names go to JS as latin1: one char per byte, '
      + 'any byte sequence survives (UTF-8 decoding turns invalid bytes into U+FFFD). 34 path, 5 name, 3 dest sites.',
    find: 'napi_create_string_utf8(',
    replace: 'napi_create_string_latin1(',
    count: 42,
  },
  {
    why: 'a helper that copies a JS string back as latin1 without truncating, and the patch level the loader checks',
    find: '// Helpers\n// TODO: Extract into a separate file.\n',
    replace: `// Helpers
// TODO: Extract into a separate file.

// ${MARK}${PATCH_LEVEL}: patched by cairn (mount/native/patch-fuse-native.mjs), see cairn's native-notes/fuse.md
#include <errno.h>
static const uint32_t cairn_patch_level = ${PATCH_LEVEL};

// cairn: copy the JS string \`val\` as latin1 (one byte per char, the inverse of napi_create_string_latin1)
// into \`buf\` of \`cap\` bytes, NUL-terminated. Returns its length, -EIO if \`val\` is not a string,
// -ENAMETOOLONG if it does not fit: never truncates.
static int cairn_latin1 (napi_env env, napi_value val, char *buf, size_t cap) {
  size_t len = 0;
  if (napi_get_value_string_latin1(env, val, NULL, 0, &len) != napi_ok) return -EIO;
  if (len >= cap) return -ENAMETOOLONG;
  if (napi_get_value_string_latin1(env, val, buf, cap, &len) != napi_ok) return -EIO;
  return (int) len;
}
`,
    count: 1,
  },
  {
    why: 'a stat crosses as 16 signed 64-bit integers with seconds and nanoseconds apart: 64-bit ino, size, '
      + 'blocks, nlink; negative (pre-1970) seconds; full nanoseconds. index.js getStatArray writes the same layout.',
    find: /^static void populate_stat \(uint32_t \*ints, struct stat\* stat\) \{\n[\s\S]*?\n\}\n/gm,
    replace: `// cairn: a stat crosses as a BigInt64Array of 16 fields (index.js getStatArray writes it):
//   0 mode  1 uid  2 gid  3 size  4 dev  5 nlink  6 ino  7 rdev  8 blksize  9 blocks
//   10/11 atime s/ns  12/13 mtime s/ns  14/15 ctime s/ns   (ns in [0, 1e9); s may be negative)
static void populate_stat (uint32_t *ints, struct stat* stat) {
  const int64_t *v = (const int64_t *) ints;
  stat->st_mode = v[0];
  stat->st_uid = v[1];
  stat->st_gid = v[2];
  stat->st_size = v[3];
  stat->st_dev = v[4];
  stat->st_nlink = v[5];
  stat->st_ino = (uint64_t) v[6];
  stat->st_rdev = v[7];
  stat->st_blksize = v[8];
  stat->st_blocks = v[9];
#ifdef __APPLE__
  stat->st_atimespec.tv_sec = v[10]; stat->st_atimespec.tv_nsec = v[11];
  stat->st_mtimespec.tv_sec = v[12]; stat->st_mtimespec.tv_nsec = v[13];
  stat->st_ctimespec.tv_sec = v[14]; stat->st_ctimespec.tv_nsec = v[15];
#else
  stat->st_atim.tv_sec = v[10]; stat->st_atim.tv_nsec = v[11];
  stat->st_mtim.tv_sec = v[12]; stat->st_mtim.tv_nsec = v[13];
  stat->st_ctim.tv_sec = v[14]; stat->st_ctim.tv_nsec = v[15];
#endif
  (void) uint32s_to_timespec; // cairn: no longer used for stats
}
`,
    count: 1,
  },
  {
    why: 'readdir names come back as latin1 into a 256-byte buffer (NAME_MAX 255 + NUL). Upstream used UTF-8, '
      + 'cut names at 1023 bytes, and on a non-string entry threw without answering, which hung that FUSE thread: '
      + 'now such an entry, or a name over 255 bytes, answers the whole readdir with an error.',
    find: '      NAPI_UTF8(name, 1024, raw_name)\n',
    replace: '      char name[256]; // cairn: latin1, NAME_MAX\n'
      + '      int name_res = cairn_latin1(env, raw_name, name, sizeof(name));\n'
      + '      if (name_res < 0) { res = name_res; break; }\n',
    count: 2,
  },
  {
    why: 'the readlink target comes back as latin1, written straight into FUSE\'s buffer of l->len bytes '
      + '(PATH_MAX + 1); a target that does not fit is ENAMETOOLONG instead of silently truncated, '
      + 'and a non-string no longer hangs the FUSE thread.',
    find: '  NAPI_ARGV_UTF8(linkname, l->len, 2)\n  strncpy(l->linkname, linkname, l->len);\n',
    replace: '  // cairn: latin1 target, never truncated\n'
      + '  if (res == 0) {\n'
      + '    int link_res = cairn_latin1(env, argv[2], l->linkname, l->len);\n'
      + '    if (link_res < 0) res = link_res;\n'
      + '  }\n',
    count: 1,
  },
  {
    why: 'export the patch level so the loader can tell this build from the shipped prebuild',
    find: '  NAPI_EXPORT_SIZEOF(fuse_thread_t)\n',
    replace: '  NAPI_EXPORT_SIZEOF(fuse_thread_t)\n  NAPI_EXPORT_UINT32(cairn_patch_level)\n',
    count: 1,
  },
]

/** @type {Substitution[]} substitutions in index.js */
const JS_SUBSTITUTIONS = [
  {
    why: 'refuse to run this index.js over an addon that is not the matching patched build '
      + '(the stat layout would be misread), and say how to fix it',
    find: "const binding = require('node-gyp-build')(__dirname)\n",
    replace: `const binding = require('node-gyp-build')(__dirname)
// ${MARK}${PATCH_LEVEL}: patched by cairn (mount/native/patch-fuse-native.mjs), see cairn's native-notes/fuse.md
if (binding.cairn_patch_level !== ${PATCH_LEVEL}) {
  throw new Error('fuse-native: index.js is patched by cairn (level ${PATCH_LEVEL}) but the loaded addon is not; ' +
    'rebuild it with: node <cairn>/mount/native/patch-fuse-native.mjs --force')
}
`,
    count: 1,
  },
  {
    why: 'mount options upstream cannot express: use_ino (the kernel then uses st_ino, so hard links share '
      + 'an inode number) and ro',
    find: "    if (this.opts.modules) options.push('modules=' + this.opts.modules)\n",
    replace: "    if (this.opts.modules) options.push('modules=' + this.opts.modules)\n"
      + "    if (this.opts.useIno) options.push('use_ino') // cairn\n"
      + "    if (this.opts.readOnly) options.push('ro') // cairn\n",
    count: 1,
  },
  {
    why: 'let the caller replace the unmount step: upstream runs `fusermount -uz` through a shell and, when it '
      + 'fails because the mount is already gone, never releases the addon\'s handle, so the process never exits',
    find: '    Fuse.unmount(this.mnt, err => {\n',
    replace: '    const unmount = this.opts.unmount || Fuse.unmount // cairn: caller-supplied unmount step\n'
      + '    unmount(this.mnt, err => {\n',
    count: 1,
  },
  {
    why: 'getxattr into a buffer that is too small answers ERANGE (as the kernel expects) instead of '
      + 'copying a truncated value and claiming its full length',
    find: '        value.copy(valueBuf)\n',
    replace: '        if (valueBuf.length && value.length > valueBuf.length) return signal(-34, valueBuf.buffer) // cairn: ERANGE\n'
      + '        value.copy(valueBuf)\n',
    count: 1,
  },
  {
    why: 'listxattr names are written as latin1 (one byte per char, like every other name), and a list that '
      + 'does not fit the caller\'s buffer answers ERANGE instead of being written past and truncated',
    find: /^ {2}_op_listxattr \(signal, path, listBuf\) \{\n[\s\S]*?\n {2}\}\n/gm,
    replace: `  _op_listxattr (signal, path, listBuf) {
    // cairn: latin1 names; ERANGE when the list does not fit (size query: listBuf.length 0)
    this.ops.listxattr(path, (err, list) => {
      if (err || !list) return signal(err || 0, listBuf.buffer)
      let size = 0
      for (const name of list) size += Buffer.byteLength(name, 'latin1') + 1
      if (!listBuf.length) return signal(size, listBuf.buffer)
      if (size > listBuf.length) return signal(-34, listBuf.buffer)
      let ptr = 0
      for (const name of list) {
        ptr += listBuf.write(name, ptr, 'latin1')
        listBuf[ptr++] = 0
      }
      return signal(ptr, listBuf.buffer)
    })
  }
`,
    count: 1,
  },
  {
    why: 'the stat array becomes 16 signed 64-bit fields, times as seconds + nanoseconds taken from '
      + 'atimeNs/mtimeNs/ctimeNs (BigInt ns since the epoch, may be negative); a Date or ms number still works',
    find: /^function getStatArray \(stat\) \{\n[\s\S]*?\n\}\n/gm,
    replace: `// cairn: a stat crosses as a BigInt64Array of 16 fields (the patched populate_stat reads it):
//   0 mode  1 uid  2 gid  3 size  4 dev  5 nlink  6 ino  7 rdev  8 blksize  9 blocks
//   10/11 atime s/ns  12/13 mtime s/ns  14/15 ctime s/ns   (ns in [0, 1e9); s may be negative)
// Integer fields may be numbers or BigInts (ino up to 2^64 - 1 wraps into int64 and back unchanged).
function getStatArray (stat) {
  const s = stat || {}
  const a = new BigInt64Array(16)
  a[0] = BigInt(s.mode || 0)
  a[1] = BigInt(s.uid || 0)
  a[2] = BigInt(s.gid || 0)
  a[3] = BigInt(s.size || 0)
  a[4] = BigInt(s.dev || 0)
  a[5] = BigInt(s.nlink || 1)
  a[6] = BigInt(s.ino || 0)
  a[7] = BigInt(s.rdev || 0)
  a[8] = BigInt(s.blksize || 0)
  a[9] = BigInt(s.blocks || 0)
  setTimeNs(a, 10, s.atimeNs, s.atime)
  setTimeNs(a, 12, s.mtimeNs, s.mtime)
  setTimeNs(a, 14, s.ctimeNs, s.ctime)
  return a
}

function setTimeNs (a, i, ns, legacy) {
  if (typeof ns !== 'bigint') ns = BigInt(Math.trunc(toDateMS(legacy))) * 1000000n
  let sec = ns / 1000000000n
  let nsec = ns % 1000000000n
  if (nsec < 0n) { sec -= 1n; nsec += 1000000000n } // floor, so that nsec is in [0, 1e9)
  a[i] = sec
  a[i + 1] = nsec
}
`,
    count: 1,
  },
  {
    why: 'expose the patch level of index.js to the loader',
    find: '\nmodule.exports = Fuse\n',
    replace: `\nFuse.cairnPatchLevel = ${PATCH_LEVEL} // cairn: checked by mount/fuse-binding.ts\nmodule.exports = Fuse\n`,
    count: 1,
  },
]

const FILES = [
  { name: 'fuse-native.c', substitutions: C_SUBSTITUTIONS },
  { name: 'index.js', substitutions: JS_SUBSTITUTIONS },
]

class PackagingError extends Error {}
class EnvironmentError extends Error {}

const args = new Set(process.argv.slice(2))
const strict = args.has('--strict')

main().catch((err) => {
  if (err instanceof EnvironmentError && !strict) {
    console.log(`cairn: fuse-native not patched, FUSE mounts will be unavailable: ${err.message}`)
    process.exit(0)
  }
  console.error(`cairn: patching fuse-native failed: ${err instanceof Error ? err.message : String(err)}`)
  process.exit(1)
})

async function main() {
  const dir = locateFuseNative()
  const version = JSON.parse(await readFile(path.join(dir, 'package.json'), 'utf8')).version
  if (version !== FUSE_NATIVE_VERSION) {
    throw new PackagingError(`${dir} is fuse-native ${version}; this patch is for exactly ${FUSE_NATIVE_VERSION}`)
  }
  if (args.has('--restore')) return restore(dir)
  if (args.has('--check')) {
    const problem = await checkBuild(dir)
    if (problem) { console.error(`cairn: fuse-native patch not in place: ${problem}`); process.exit(1) }
    console.log(`cairn: fuse-native ${version} patched (level ${PATCH_LEVEL}) and built: ${dir}`)
    return
  }
  if (process.platform !== 'linux') throw new EnvironmentError(`cairn mounts need Linux, this is ${process.platform}`)

  // Compute the patched sources first: a substitution that does not match fails before anything is written.
  const patched = []
  for (const file of FILES) {
    const pristine = await readPristine(dir, file.name)
    patched.push({ ...file, pristine, text: applySubstitutions(file.name, pristine, file.substitutions) })
  }
  if (!args.has('--force') && !(await checkBuild(dir, patched))) {
    console.log(`cairn: fuse-native ${version} already patched (level ${PATCH_LEVEL}) and built`)
    return
  }

  const toolchain = await findToolchain(dir) // EnvironmentError before anything is touched
  for (const file of patched) {
    const orig = path.join(dir, file.name + '.cairn-orig')
    if (!(await exists(orig))) await writeFile(orig, file.pristine)
    await writeFile(path.join(dir, file.name), file.text)
  }
  try {
    await build(dir, toolchain)
    const level = await loadedPatchLevel(dir)
    await writeFile(path.join(dir, 'build', 'Release', MARKER_FILE), JSON.stringify({
      fuseNative: version,
      patchLevel: PATCH_LEVEL,
      sources: Object.fromEntries(patched.map((f) => [f.name, sha256(f.text)])),
      node: process.version,
      builtAt: new Date().toISOString(),
    }, null, 2) + '\n')
    const note = level === PATCH_LEVEL ? ''
      : ` (it does not load here: ${level}; install FUSE with: apt-get install -y fuse libfuse2)`
    console.log(`cairn: fuse-native ${version} patched (level ${PATCH_LEVEL}) and rebuilt${note}`)
  } catch (err) {
    await restore(dir, { quiet: true }) // leave fuse-native consistent: its own files and its prebuild
    throw new EnvironmentError(`building it failed (${err instanceof Error ? err.message : String(err)})`)
  }
}

function locateFuseNative() {
  const require = createRequire(import.meta.url)
  try {
    return path.dirname(require.resolve('fuse-native/package.json'))
  } catch (err) {
    throw new PackagingError(`fuse-native is not installed next to cairn (${err instanceof Error ? err.message : err})`)
  }
}

/** The original text of `name`: the `.cairn-orig` copy if the file is already patched. */
async function readPristine(dir, name) {
  const current = await readFile(path.join(dir, name), 'utf8')
  if (!current.includes(MARK)) return current
  const orig = path.join(dir, name + '.cairn-orig')
  if (!(await exists(orig))) {
    throw new PackagingError(`${name} is patched but ${orig} is missing: reinstall fuse-native (npm ci)`)
  }
  const text = await readFile(orig, 'utf8')
  if (text.includes(MARK)) throw new PackagingError(`${orig} is itself patched: reinstall fuse-native (npm ci)`)
  return text
}

/** @param {string} name @param {string} text @param {Substitution[]} substitutions */
function applySubstitutions(name, text, substitutions) {
  for (const s of substitutions) {
    const found = typeof s.find === 'string' ? text.split(s.find).length - 1 : [...text.matchAll(s.find)].length
    if (found !== s.count) {
      throw new PackagingError(`${name}: expected ${s.count} site(s) of ${String(s.find).slice(0, 60)}… but found ${found} `
        + `(fuse-native differs from ${FUSE_NATIVE_VERSION}); change: ${s.why}`)
    }
    text = typeof s.find === 'string' ? text.split(s.find).join(s.replace) : text.replace(s.find, () => s.replace)
  }
  return text
}

/**
 * Why the current state is not the finished patch, or '' if it is. With `expected`, the sources on disk
 * must also equal the freshly computed patched text (so a newer script level re-patches).
 */
async function checkBuild(dir, expected) {
  for (const file of expected ?? FILES) {
    const text = await readFile(path.join(dir, file.name), 'utf8')
    if (!text.includes(MARK + PATCH_LEVEL)) return `${file.name} is not patched (level ${PATCH_LEVEL})`
    if (expected && text !== file.text) return `${file.name} differs from this script's patch`
  }
  const marker = path.join(dir, 'build', 'Release', MARKER_FILE)
  if (!(await exists(marker))) return `${marker} is missing (not rebuilt)`
  const info = JSON.parse(await readFile(marker, 'utf8'))
  if (info.patchLevel !== PATCH_LEVEL) return `${marker} records level ${info.patchLevel}`
  if (!(await exists(path.join(dir, 'build', 'Release', 'fuse.node')))) return 'build/Release/fuse.node is missing'
  if (args.has('--check')) {
    const level = await loadedPatchLevel(dir)
    if (level !== PATCH_LEVEL) return `the addon does not load as level ${PATCH_LEVEL}: ${level}`
  }
  return ''
}

/** Load fuse-native in a child process (nothing is mounted) and report `Fuse.cairnPatchLevel` or the error. */
async function loadedPatchLevel(dir) {
  const code = 'try { process.stdout.write(String(require(process.argv[1]).cairnPatchLevel)) }'
    + ' catch (e) { process.stdout.write(String(e && e.message).split("\\n")[0]) }'
  const { stdout } = await run(process.execPath, ['-e', code, dir], { cwd: dir })
  return /^\d+$/.test(stdout) ? Number(stdout) : stdout
}

async function restore(dir, { quiet = false } = {}) {
  for (const { name } of FILES) {
    const orig = path.join(dir, name + '.cairn-orig')
    if (await exists(orig)) {
      await writeFile(path.join(dir, name), await readFile(orig))
      await rm(orig)
    }
  }
  await rm(path.join(dir, 'build'), { recursive: true, force: true })
  if (!quiet) console.log(`cairn: fuse-native restored to its own files and prebuild: ${dir}`)
}

/** Everything node-gyp needs, or an EnvironmentError naming what is missing. */
async function findToolchain(dir) {
  const missing = []
  const nodeGyp = await findNodeGyp(dir)
  if (!nodeGyp) missing.push('node-gyp')
  const cc = (process.env.CC || 'cc').trim().split(/\s+/)[0]
  const cxx = (process.env.CXX || 'g++').trim().split(/\s+/)[0]
  for (const tool of [cc, cxx, 'make']) if (!(await onPath(tool))) missing.push(tool)
  if (!process.env.PYTHON && !(await onPath('python3'))) missing.push('python3')
  if (missing.length) {
    throw new EnvironmentError(`missing ${missing.join(', ')} (Debian: apt-get install -y g++ make python3), `
      + `then run: node ${fileURLToPath(import.meta.url)}`)
  }
  // Node's headers: npm's nodedir setting, or the ones installed with this node (/usr/include/node).
  // Otherwise node-gyp downloads them, which needs nodejs.org.
  let nodedir = process.env.npm_config_nodedir
  const prefix = path.resolve(path.dirname(process.execPath), '..')
  if (!nodedir && (await exists(path.join(prefix, 'include', 'node', 'node_api.h')))) nodedir = prefix
  return { nodeGyp, nodedir }
}

async function findNodeGyp(dir) {
  const candidates = []
  for (const from of [path.join(dir, 'package.json'), import.meta.url]) {
    try { candidates.push(createRequire(from).resolve('node-gyp/bin/node-gyp.js')) } catch { /* not there */ }
  }
  if (process.env.npm_config_node_gyp) candidates.push(process.env.npm_config_node_gyp)
  candidates.push(path.resolve(path.dirname(process.execPath), '../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js'))
  for (const c of candidates) if (await exists(c)) return c
  return null
}

async function build(dir, { nodeGyp, nodedir }) {
  const gypArgs = [nodeGyp, 'rebuild', '--release']
  if (nodedir) gypArgs.push(`--nodedir=${nodedir}`)
  // binding.gyp runs `node -e "require('napi-macros')"`: this node must come first on PATH
  const env = { ...process.env, PATH: `${path.dirname(process.execPath)}${path.delimiter}${process.env.PATH ?? ''}` }
  const { code, stdout, stderr } = await run(process.execPath, gypArgs, { cwd: dir, env })
  if (code !== 0) {
    const tail = (stdout + stderr).trim().split('\n').slice(-15).join('\n')
    console.error(tail)
    throw new Error(`node-gyp rebuild exited with ${code}`)
  }
}

function run(cmd, argv, options) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, argv, { ...options, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => { stdout += d })
    child.stderr.on('data', (d) => { stderr += d })
    child.on('error', reject)
    child.on('close', (code) => resolve({ code, stdout, stderr }))
  })
}

async function onPath(tool) {
  if (tool.includes('/')) return exists(tool, constants.X_OK)
  for (const d of (process.env.PATH ?? '').split(path.delimiter)) {
    if (d && (await exists(path.join(d, tool), constants.X_OK))) return true
  }
  return false
}

async function exists(p, mode = constants.F_OK) {
  try { await access(p, mode); return true } catch { return false }
}

function sha256(text) {
  return createHash('sha256').update(text).digest('hex')
}
