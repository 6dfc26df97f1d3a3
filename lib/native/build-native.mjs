#!/usr/bin/env node
/**
 * Builds one of cairn's native addons with node-gyp. Run from package.json's
 * postinstall; works offline.
 *
 *   --addon posix (default)  lib/native/posix.c -> lib/native/build/Release/cairn_posix.node
 *   --addon fuse             mount/native/lowlevel.c -> mount/native/build/Release/cairn_fuse.node
 *                            (libfuse 2 headers from the npm package fuse-shared-library-linux)
 *
 *   node lib/native/build-native.mjs [--addon NAME]             exit non-zero if the build fails
 *   node lib/native/build-native.mjs [--addon NAME] --optional  warn and exit 0 if it fails
 *
 * node-gyp is taken from, in order: the one npm names to install scripts
 * ($npm_config_node_gyp), this package's own node_modules, the one bundled
 * with the npm that sits beside this node. Headers come from
 * $npm_config_nodedir when npm passes it, else from this node's own prefix
 * when its include/node matches the running version, so node-gyp never
 * needs to download them.
 */
import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { delimiter, dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const optional = process.argv.includes('--optional')
const ADDONS = {
  posix: {
    dir: here,
    without: ['the native helper (exact timestamps, xattrs, fifos and devices) is not available;',
      'backup and restore will stop with an error when they need it. Needs g++, make, python3;'],
  },
  fuse: {
    dir: resolve(here, '../../mount/native'),
    without: ['the FUSE binding is not available: cairn mount will say so, everything else works.',
      'Needs g++, make, python3;'],
  },
}
const name = process.argv.includes('--addon') ? process.argv[process.argv.indexOf('--addon') + 1] : 'posix'
const addon = ADDONS[name]
if (addon === undefined) {
  console.error(`cairn: --addon ${name}: known addons are ${Object.keys(ADDONS).join(', ')}`)
  process.exit(1)
}

function findNodeGyp() {
  const candidates = []
  if (process.env.npm_config_node_gyp) candidates.push(process.env.npm_config_node_gyp)
  try {
    candidates.push(createRequire(import.meta.url).resolve('node-gyp/bin/node-gyp.js'))
  } catch {
    // not installed in this tree: try npm's own copy
  }
  if (process.env.npm_execpath) {
    // npm_execpath is .../npm/bin/npm-cli.js
    candidates.push(resolve(dirname(process.env.npm_execpath), '../node_modules/node-gyp/bin/node-gyp.js'))
  }
  const prefix = resolve(dirname(process.execPath), '..')
  candidates.push(join(prefix, 'lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js'))
  candidates.push(join(prefix, 'node_modules/npm/node_modules/node-gyp/bin/node-gyp.js'))
  return candidates.find((file) => existsSync(file))
}

/** Headers of exactly this node, installed beside it: nodedir for node-gyp. */
function findNodeDir() {
  if (process.env.npm_config_nodedir) return process.env.npm_config_nodedir
  const prefixes = [resolve(dirname(process.execPath), '..'), process.config.variables.node_prefix]
  for (const prefix of prefixes) {
    if (typeof prefix !== 'string') continue
    let header
    try {
      header = readFileSync(join(prefix, 'include/node/node_version.h'), 'utf8')
    } catch {
      continue
    }
    const part = (name) => header.match(new RegExp(`#define NODE_${name}_VERSION (\\d+)`))?.[1]
    const version = `${part('MAJOR')}.${part('MINOR')}.${part('PATCH')}`
    if (version === process.versions.node && existsSync(join(prefix, 'include/node/node_api.h'))) return prefix
  }
  return undefined
}

function fail(message) {
  console.error(`cairn: ${message}`)
  for (const line of addon.without) console.error(`cairn: ${line}`)
  console.error('cairn: then run: npm rebuild cairn-backup --foreground-scripts')
  process.exit(optional ? 0 : 1)
}

const nodeGyp = findNodeGyp()
if (nodeGyp === undefined) fail('node-gyp not found (neither from npm nor in node_modules)')

const args = [nodeGyp, 'rebuild']
const nodedir = findNodeDir()
if (nodedir !== undefined) args.push(`--nodedir=${nodedir}`)

// binding.gyp runs `node -p ...` to find fuse-shared-library-linux: this node must come first on PATH
const env = { ...process.env, PATH: `${dirname(process.execPath)}${delimiter}${process.env.PATH ?? ''}` }
const result = spawnSync(process.execPath, args, { cwd: addon.dir, stdio: 'inherit', env })
if (result.error) fail(`could not run node-gyp: ${result.error.message}`)
if (result.status !== 0) fail(`node-gyp rebuild failed (exit ${result.status ?? result.signal})`)
