using System.Text.Json;

namespace Pipeline.Tests.Support;

/// <summary>A StandardMerkleTree over (address, uint256) built by @openzeppelin/merkle-tree itself: root and every proof, as hex.</summary>
public sealed record OpenZeppelinMerkleTree(string Root, string[][] Proofs)
{
    /// <summary>Builds one tree per set; each leaf is (address as hex, amount as a decimal string). Proofs follow the leaves' order.</summary>
    public static List<OpenZeppelinMerkleTree> Build(IEnumerable<IEnumerable<(string Account, string Amount)>> sets)
    {
        const string script = """
            const {StandardMerkleTree} = require('@openzeppelin/merkle-tree');
            const sets = JSON.parse(require('fs').readFileSync(process.argv[1], 'utf8'));
            console.log(JSON.stringify(sets.map(values => {
              const tree = StandardMerkleTree.of(values, ['address', 'uint256']);
              return {Root: tree.root, Proofs: values.map((_, i) => tree.getProof(i))};
            })));
            """;
        var input = JsonSerializer.Serialize(sets.Select(set => set.Select(leaf => new[] { leaf.Account, leaf.Amount })));
        return JsonSerializer.Deserialize<List<OpenZeppelinMerkleTree>>(RepositoryTools.Node(script, input))!;
    }
}
