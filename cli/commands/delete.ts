import type { Command } from '../command.js'
import { EXIT_OK } from '../exit.js'
import { parseLocation, requireArchive } from '../location.js'
import { openRepository } from '../open-repo.js'

export const remove: Command = {
  name: 'delete',
  usage: 'delete REPO::ARCHIVE',
  summary: 'delete an archive (its space is reclaimed by a later compaction)',
  options: {},
  async run({ positionals, env, out }) {
    const loc = parseLocation(positionals[0], env.repo)
    const name = requireArchive(loc, 'delete')
    const repo = await openRepository(env, loc.repo)
    await repo.deleteArchive(name)
    out(`Deleted archive ${name}.\n`)
    return EXIT_OK
  },
}
