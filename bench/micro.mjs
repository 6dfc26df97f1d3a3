#!/usr/bin/env node
// In-process measurements behind figures quoted in bench/RESULTS.md (session 4), outside FUSE:
//
//   node bench/micro.mjs walk   --repo REPO --archive NAME   storage reads and time of a walk of every
//                                                            directory, trees through pack blocks and
//                                                            through the coalescing loader
//   node bench/micro.mjs leaves --repo REPO --archive NAME   decoding every tree leaf, the fast reader
//                                                            against msgpackr's path (median of 7 passes)
//   node bench/micro.mjs kdf                                 the default scrypt, cairn's lanes at once
//                                                            against node:crypto's (median of 5)
//
// Environment as for cairn (CAIRN_PASSPHRASE, CAIRN_CACHE_DIR, CAIRN_CONFIG_DIR). Run `npm run build` first.
import { randomBytes, scryptSync } from 'node:crypto';
import { parseArgs } from 'node:util';
import { LocalBackend, Repository, ArchiveReader, openArchiveView, blockedTreeLoader, coalescedBlobLoader } from '../dist/lib/index.js';
import { decodeTree } from '../dist/lib/archive/tree.js';
import { readLeaf } from '../dist/lib/archive/leaf-reader.js';
import { decodeItem } from '../dist/lib/archive/item.js';
import { unpack } from '../dist/lib/encoding/msgpack.js';
import { DEFAULT_KDF_PARAMS, deriveKey } from '../dist/lib/crypto/kdf.js';

const TREE = 1;
const { positionals: [what], values: o } = parseArgs({ allowPositionals: true, options: { repo: { type: 'string' }, archive: { type: 'string' } } });
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

class CountingBackend extends LocalBackend {
  reads = 0;
  bytes = 0;
  getRange(key, offset, length) {
    this.reads++;
    this.bytes += length;
    return super.getRange(key, offset, length);
  }
}

async function open(backend) {
  if (!o.repo || !o.archive) throw new Error(`${what} needs --repo REPO --archive NAME`);
  const env = process.env;
  return Repository.open({ location: backend ?? o.repo, passphrase: env.CAIRN_PASSPHRASE, cacheDir: env.CAIRN_CACHE_DIR ?? null, configDir: env.CAIRN_CONFIG_DIR });
}

async function walk() {
  const backend = new CountingBackend(o.repo);
  const repo = await open(backend);
  await repo.index();
  for (const [name, loadTree] of [['pack blocks (4 MiB kept)', blockedTreeLoader(repo, 4 << 20)], ['coalescing loader', coalescedBlobLoader(repo, 'tree', null)]]) {
    backend.reads = 0;
    backend.bytes = 0;
    const t0 = performance.now();
    const root = await openArchiveView(repo, o.archive, { treeBytes: 8 << 20, loadTree });
    let dirs = 0;
    const visit = async (dir) => {
      const list = await dir.list();
      dirs++;
      for (const e of list) if ((e.mode & 0o170000) === 0o040000) await visit(await dir.lookup(e.name));
    };
    await visit(root);
    console.log(`${name}: ${dirs} directories, ${backend.reads} storage reads of ${(backend.bytes / 1e6).toFixed(1)} MB, ${(performance.now() - t0).toFixed(0)} ms`);
  }
  await repo.close();
}

async function leaves() {
  const repo = await open();
  const reader = await ArchiveReader.open(repo, o.archive);
  const raws = [];
  for (const todo = [reader.meta.root]; todo.length > 0;) {
    const raw = await repo.loadBlob(TREE, todo.pop());
    raws.push(raw);
    const tree = decodeTree(raw, 'bench');
    for (const next of tree.kind === 'leaf' ? tree.entries.filter((e) => e.tree).map((e) => e.tree) : tree.pages.map((p) => p.id)) todo.push(next);
  }
  const time = (fn) => median(Array.from({ length: 7 }, () => { const t0 = performance.now(); for (const raw of raws) fn(raw); return performance.now() - t0; }));
  const fast = time((raw) => readLeaf(raw));
  const generic = time((raw) => { const v = unpack(raw); if (Array.isArray(v.e)) v.e.map((e) => decodeItem(e, 'bench')); });
  console.log(`${raws.length} trees: fast reader ${fast.toFixed(1)} ms, msgpackr and decodeItem ${generic.toFixed(1)} ms`);
  await repo.close();
}

async function kdf() {
  const { N, r, p } = DEFAULT_KDF_PARAMS;
  const salt = randomBytes(32);
  const timed = async (fn) => median(await Array.from({ length: 5 }).reduce(async (acc) => { const xs = await acc; const t0 = performance.now(); await fn(); return [...xs, performance.now() - t0]; }, Promise.resolve([])));
  const lanes = await timed(() => deriveKey('bench passphrase', salt, DEFAULT_KDF_PARAMS));
  const openssl = await timed(async () => scryptSync('bench passphrase', salt, 32, { N, r, p, maxmem: 1 << 30 }));
  console.log(`scrypt N=${N} r=${r} p=${p}: lanes at once ${lanes.toFixed(0)} ms, node:crypto ${openssl.toFixed(0)} ms`);
}

const steps = { walk, leaves, kdf };
if (!steps[what]) {
  console.error('usage: node bench/micro.mjs walk|leaves|kdf [--repo REPO --archive NAME]');
  process.exit(2);
}
await steps[what]();
