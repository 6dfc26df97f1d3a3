import { ArchiveReader, extractArchive, makeReaderCaches } from '../../lib/index.js'
import type { Command } from '../command.js'
import { EXIT_OK, EXIT_WARNING, usageError } from '../exit.js'
import { parseLocation, requireArchive } from '../location.js'
import { openRepository } from '../open-repo.js'

export const extract: Command = {
  name: 'extract',
  usage: 'extract [options] REPO::ARCHIVE [PATH...]',
  summary: 'restore an archive (or PATHs in it) into the current directory',
  options: {
    'dry-run': { type: 'boolean', short: 'n' },
    'strip-components': { type: 'string' },
    sparse: { type: 'boolean' },
    'numeric-ids': { type: 'boolean' },
    exclude: { type: 'string', short: 'e', multiple: true },
    list: { type: 'boolean' },
  },
  async run({ values, positionals, env, out, err, signal }) {
    const loc = parseLocation(positionals[0], env.repo)
    const archive = requireArchive(loc, 'extract')
    const strip = values['strip-components'] === undefined ? 0 : Number(values['strip-components'])
    if (!Number.isInteger(strip) || strip < 0) throw usageError('--strip-components needs a whole number')
    const repo = await openRepository(env, loc.repo, { preloadIndex: true })
    // Worker threads read, open and write file content themselves; this
    // thread reads only the archive's trees, each once.
    const reader = await ArchiveReader.open(repo, archive, makeReaderCaches(repo, { treeBytes: 8 * 1024 * 1024, chunkBytes: 0 }))
    const result = await extractArchive(reader, {
      destination: process.cwd(),
      paths: positionals.slice(1).map((p) => Buffer.from(p)),
      exclude: (values.exclude as string[]) ?? [],
      stripComponents: strip,
      sparse: Boolean(values.sparse),
      numericIds: Boolean(values['numeric-ids']),
      dryRun: Boolean(values['dry-run']),
      signal,
      onItem: values.list || values['dry-run'] ? (path) => out(Buffer.concat([path, Buffer.from('\n')])) : undefined,
      onWarning: (w) => err(Buffer.concat([w.path, Buffer.from(`: ${w.message}\n`)])),
    })
    return result.warnings > 0 ? EXIT_WARNING : EXIT_OK
  },
}
