// Compiles the contracts in this folder with solc (the version infra/tools/package.json pins) and OpenZeppelin
// Contracts from infra/tools/node_modules; writes build/<Contract>.json (abi, bytecode) for the rewards project.
// Run by ./depin's setup when a source or the tools' lockfile changed: node infra/contracts/compile.js
'use strict';
const fs = require('fs');
const path = require('path');
const { createRequire } = require('module');

const here = __dirname;
const tools = createRequire(path.join(here, '..', 'tools', 'package.json'));
const solc = tools('solc');
const sources = fs.readdirSync(here).filter(f => f.endsWith('.sol')).sort();

const input = {
  language: 'Solidity',
  sources: Object.fromEntries(sources.map(f => [f, { content: fs.readFileSync(path.join(here, f), 'utf8') }])),
  settings: {
    optimizer: { enabled: true, runs: 200 },
    // Pinned so a compiler upgrade cannot silently emit opcodes an older chain lacks.
    evmVersion: 'cancun',
    outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object'] } },
  },
};

function findImport(importPath) {
  try {
    return { contents: fs.readFileSync(tools.resolve(importPath), 'utf8') };
  } catch {
    return { error: `not found: ${importPath} (is @openzeppelin/contracts installed in infra/tools?)` };
  }
}

const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImport }));
const problems = (output.errors || []).filter(e => e.severity === 'error' || e.type === 'Warning');
for (const p of problems) console.error(p.formattedMessage);
if (problems.length > 0) process.exit(1);

const build = path.join(here, 'build');
fs.mkdirSync(build, { recursive: true });
for (const file of sources) {
  for (const [name, contract] of Object.entries(output.contracts[file])) {
    const artifact = { contractName: name, compiler: solc.version(), abi: contract.abi, bytecode: '0x' + contract.evm.bytecode.object };
    fs.writeFileSync(path.join(build, `${name}.json`), JSON.stringify(artifact, null, 2) + '\n');
  }
}
console.log(`compiled ${sources.join(', ')} with solc ${solc.version()}`);
