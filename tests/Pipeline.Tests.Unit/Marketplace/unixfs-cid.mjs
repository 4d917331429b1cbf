// The CIDs `ipfs add --cid-version 1` gives, computed by the IPFS importer from npm (js-ipfs' own code), one per file
// named on the command line. Run with infra/tools as the working directory, where the packages are installed.
import { readFileSync } from 'node:fs';
import { importer } from 'ipfs-unixfs-importer';
import { fixedSize } from 'ipfs-unixfs-importer/chunker';
import { balanced } from 'ipfs-unixfs-importer/layout';
import { MemoryBlockstore } from 'blockstore-core/memory';

for (const path of process.argv.slice(1)) {
  const options = { cidVersion: 1, rawLeaves: true, chunker: fixedSize({ chunkSize: 262144 }), layout: balanced({ maxChildrenPerNode: 174 }) };
  for await (const entry of importer([{ content: readFileSync(path) }], new MemoryBlockstore(), options)) {
    console.log(entry.cid.toString());
  }
}
